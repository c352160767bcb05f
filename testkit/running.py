"""A daemon running in the test's event loop, stopped cleanly (exit 0) at the end."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

from mailbot.config import load_config
from mailbot.daemon.runner import Daemon


@contextlib.asynccontextmanager
async def running(
    config_path: Path, once: bool = False, retry_every: float | None = None
) -> AsyncIterator[Daemon]:
    """``Daemon.run()`` as a task; on exit it is stopped and must end with 0 within 30 s.

    *retry_every* shortens the deferred letters' retry period (seconds).
    """
    daemon = Daemon(load_config(config_path), once=once)
    if retry_every is not None:
        daemon.deferred_retry_every = dt.timedelta(seconds=retry_every)
    task = asyncio.create_task(daemon.run())
    try:
        yield daemon
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(task, 30) == 0
