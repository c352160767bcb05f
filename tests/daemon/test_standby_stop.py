"""A standby stopped by SIGTERM leaves the outbox to the lease holder: it connects to no
SMTP server and claims no row (the active daemon may be sending those very rows)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailbot.config import config_from_mapping
from mailbot.daemon.runner import Daemon
from mailbot.directory.lease import lease_for
from tests.mail.outbox_support import (  # noqa: F401  (fixtures)
    NOW,
    ServerFactory,
    queue,
    rows,
    sessions,
    smtp_factory,
)

INSTANCE = "mailbot-standby-test"


def test_a_standby_sends_nothing_on_sigterm(
    engine: Engine,
    sessions: sessionmaker[Session],  # noqa: F811
    smtp_factory: ServerFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    smtp = smtp_factory()
    row_id = queue(sessions)  # due long ago: any flush would send it at once
    state_dir = tmp_path / "state"
    config = config_from_mapping(
        {
            "general": {"state_dir": str(state_dir), "instance_name": INSTANCE},
            "database": {"url": engine.url.render_as_string(hide_password=False)},
            "imap": {"password_env": "X"},
            "smtp": {"host": smtp.host, "port": smtp.port, "tls": "none"},
            "daemon": {"lease_poll_seconds": 1},
        }
    )
    # "The active daemon": holds the lease for the whole test.
    active = lease_for(engine, INSTANCE, state_dir)
    assert active.try_acquire()
    daemon = Daemon(config)

    async def standby_then_sigterm() -> int:
        running = asyncio.create_task(daemon.run())
        # READY=1 with the standby status is sent when the first attempt finds the lease taken.
        async with asyncio.timeout(30):
            while not daemon._ready_sent:
                await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # the daemon's own handler takes it
        async with asyncio.timeout(30):
            return await running

    try:
        assert asyncio.run(standby_then_sigterm()) == 0
    finally:
        active.release()
    assert smtp.connections == 0
    (row,) = rows(sessions)
    # Unclaimed: a claim pushes next_attempt_at into the future.
    assert (row.id, row.status, row.attempts, row.next_attempt_at) == (row_id, "pending", 0, NOW)
