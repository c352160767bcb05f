"""Autouse fixtures that isolate a test module from the logging set-up of earlier tests.

CLI tests configure structlog onto pytest's captured stderr, which pytest closes
afterwards. A module (or a folder's conftest) imports the one fixture it needs;
being autouse, the import alone applies it to every test there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
import structlog.testing


@pytest.fixture(autouse=True)
def _captured_logs() -> Iterator[None]:
    """Keep log output in memory: independent of where earlier tests pointed structlog."""
    with structlog.testing.capture_logs():
        yield


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    """Log to the real stderr: CLI tests elsewhere leave structlog on a closed captured one."""
    handlers = logging.getLogger().handlers[:]
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """CLI tests configure logging onto a captured stderr; undo that after every test."""
    handlers = logging.getLogger().handlers[:]
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers
