"""Operations tests: keep log output in memory.

Earlier tests may have pointed structlog at a captured stream that pytest has
closed since; capturing here makes these tests independent of that order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog.testing


@pytest.fixture(autouse=True)
def _captured_logs() -> Iterator[None]:
    with structlog.testing.capture_logs():
        yield
