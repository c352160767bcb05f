"""A flusher in its own process, for crash tests: ``python -m tests.mail.outbox_flusher URL PORT``.

Like the daemon at start: :meth:`OutboxSender.resume`, then one flush, then close.
"sent" marks are batched by count only (no time limit), so that a SIGKILL lands
inside a batch wherever it comes.
"""

from __future__ import annotations

import asyncio
import sys

from mailbot.directory.engine import make_engine
from mailbot.directory.session import session_factory
from mailbot.mail.outbox import OutboxSender
from mailbot.notices.daemon_alerts import OUTBOX_ALERTS
from tests.mail.outbox_support import make_config

#: "sent" marks committed together by the flusher.
MARKS_PER_COMMIT = 20


async def main(url: str, port: int) -> None:
    """Resume, flush once, close."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    outbox = OutboxSender(
        make_config(port),
        sessions,
        OUTBOX_ALERTS,
        marks_max_rows=MARKS_PER_COMMIT,
        marks_max_age=3600,
    )
    outbox.resume()
    try:
        await outbox.flush()
    finally:
        await outbox.close()
        engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
