"""The audit page: every change made through the console (admins only)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.responses import Response

from mailbot.web import audit
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup
from mailbot.web.roles import Role

PAGES = PageGroup()
PAGE_SIZE = 100


@PAGES.get("/audit", role=Role.ADMIN)
def audit_page(page: PageRequest) -> Response:
    """The newest entries first, 100 a page."""
    text = page.request.query_params.get("page", "1")
    number = max(int(text), 1) if text.isdigit() and len(text) < 7 else 1
    zone = ZoneInfo(page.web.config.general.timezone)
    with page.db() as session:
        total, rows = audit.entries(session, PAGE_SIZE, (number - 1) * PAGE_SIZE)
        entries = [(row, row.at.astimezone(zone)) for row in rows]
    return page.render(
        "audit.html", entries=entries, number=number, has_next=number * PAGE_SIZE < total
    )
