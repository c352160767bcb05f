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
from mailbot.notices.certificate_alerts import config_hint, local_day


def alert_reply_cap(
    session: Session, config: Config, sender: str, now: dt.datetime
) -> Alert | None:
    """Tell the admins that *sender* gets no more replies today (once per sender and day)."""
    cap = config.limits.replies_per_sender_per_day
    day = local_day(now, config.general.timezone)
    body = "\n".join(
        [
            f"Участнику {sender} сегодня ({day}) отправлено ответов: {cap}, это предел "
            "limits.replies_per_sender_per_day. До конца дня его письма по-прежнему "
            "проверяются полностью (регистрация сертификатов, технологическая папка, "
            "оповещения), но ответы ему не отправляются.",
            "",
            "Частые причины: петля с автоответчиком участника (отпуск), почтовая программа, "
            "повторяющая отправку, или чужие письма от имени доверенного адреса.",
            "",
            "Что делать:",
            f"1. Посмотрите письма участника: mailbot journal --sender {sender}"
            f"{config_hint(config)}",
            "2. Если это автоответчик, попросите участника его отключить; если письма "
            "чужие — удалите доверенный адрес (mailbot address remove).",
            "3. Завтра ответы возобновятся сами.",
        ]
    )
    return queue_alert(
        session,
        config,
        kind="reply_cap",
        dedup_key=f"reply_cap:{day}:{sender.lower()}",
        subject=f"Исчерпан дневной предел ответов участнику {sender}",
        body=body,
        now=now,
    )
