"""The dashboard: today and this week at a glance."""

from __future__ import annotations

import datetime as dt

from starlette.responses import Response

from mailbot.app import deferral
from mailbot.app.assembly import crl_store
from mailbot.app.crl_status import current_crls
from mailbot.app.listings import JournalFilter, journal_letters
from mailbot.app.outbox_status import outbox_backlog
from mailbot.app.quarantine import list_quarantine
from mailbot.app.report import expiring_certificates, outcome_counts
from mailbot.app.states import QuarantineStatus
from mailbot.dates import local_time
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup

PAGES = PageGroup()


@PAGES.get("/")
def dashboard(page: PageRequest) -> Response:
    """Letters today and this week by outcome, what waits, CRL ages, expiring certificates."""
    config = page.web.config
    now = page.now
    local_now = local_time(now, config.general.timezone)
    today = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - dt.timedelta(days=today.weekday())
    with page.db() as session:
        this_week = journal_letters(session, JournalFilter(limit=None, since=week))
        today_letters = [letter for letter in this_week if letter.received_at >= today]
        deferred = len(deferral.deferred_letters(session))
        quarantined = len(list_quarantine(session, QuarantineStatus.PENDING))
        expiring = expiring_certificates(session, now, config.report.expiring_days)
    crls = [(crl, crl.stale_at(now)) for crl in current_crls(page.web.sessions, crl_store(config))]
    return page.render(
        "dashboard.html",
        today=outcome_counts(today_letters),
        today_total=len(today_letters),
        week=outcome_counts(this_week),
        week_total=len(this_week),
        week_start=week,
        deferred=deferred,
        quarantined=quarantined,
        outbox=outbox_backlog(page.web.sessions),
        crls=crls,
        expiring=expiring,
        expiring_days=config.report.expiring_days,
        zone=config.general.timezone,
    )
