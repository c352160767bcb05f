"""Admin alert about one sender: the daily reply cap was reached.

Past ``limits.replies_per_sender_per_day`` a sender's letters are still checked
in full, but answered no more that day (a mail loop with an auto-responder
would otherwise run until the cap of the far side). The administrators hear
of it once per sender per local day, queued in the letter's own transaction.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from mailbot.config import Config
from mailbot.directory.models import Alert
from mailbot.notices.alerts import queue_alert
from mailbot.notices.certificate_alerts import alert_texts, config_hint, local_day


def alert_reply_cap(
    session: Session, config: Config, sender: str, now: dt.datetime
) -> Alert | None:
    """Tell the admins that *sender* gets no more replies today (once per sender and day)."""
    cap = config.limits.replies_per_sender_per_day
    day = local_day(now, config.general.timezone)
    texts = alert_texts(config)
    body = texts.render(
        "reply_cap", {"sender": sender, "day": day, "cap": cap, "config": config_hint(config)}
    )
    return queue_alert(
        session,
        config,
        kind="reply_cap",
        dedup_key=f"reply_cap:{day}:{sender.lower()}",
        subject=texts.subject("reply_cap", {"sender": sender}),
        body=body,
        now=now,
    )
