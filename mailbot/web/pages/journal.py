"""The journal: a searchable list of letters, one letter's story, its raw archived copy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.responses import Response

from mailbot.app.letter_story import UnknownLetter, letter_story
from mailbot.app.listings import JournalFilter, journal_letters
from mailbot.app.states import NoVerdict
from mailbot.directory.models import CertificateRecord, LetterRecord
from mailbot.regulation.decision import Outcome
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup
from mailbot.web.paging import page_number
from mailbot.web.roles import Role

PAGES = PageGroup()
PAGE_SIZE = 50
#: The outcomes offered in the search form.
OUTCOMES: tuple[str, ...] = (*(o.value for o in Outcome), *(n.value for n in NoVerdict))
#: A raw letter larger than this is not served (the daemon never accepts one this big).
MAX_RAW_BYTES = 64 * 1024 * 1024


@PAGES.get("/journal")
def journal(page: PageRequest) -> Response:
    """Letters, newest first, filtered by sender, subject, outcome and dates, 50 a page."""
    params = page.request.query_params
    zone = ZoneInfo(page.web.config.general.timezone)
    problems: list[str] = []
    since = _day(params.get("since", ""), zone, problems)
    until = _day(params.get("until", ""), zone, problems)
    outcome = params.get("outcome", "")
    if outcome and outcome not in OUTCOMES:
        problems.append("неизвестный исход")
        outcome = ""
    number = page_number(params.get("page", "1"))
    wanted = JournalFilter(
        limit=PAGE_SIZE + 1,  # one more tells whether there is a next page
        offset=(number - 1) * PAGE_SIZE,
        since=since,
        before=until + dt.timedelta(days=1) if until is not None else None,
        outcome=outcome or None,
        sender=params.get("sender", "").strip()[:320] or None,
        subject=params.get("subject", "").strip()[:200] or None,
    )
    with page.db() as session:
        rows = list(journal_letters(session, wanted))
    letters = [(row, row.received_at.astimezone(zone)) for row in rows[:PAGE_SIZE]]
    query = {k: v for k, v in params.items() if k != "page" and v}
    return page.render(
        "journal.html",
        letters=letters,
        outcomes=OUTCOMES,
        form={k: params.get(k, "") for k in ("sender", "subject", "outcome", "since", "until")},
        problems=problems,
        number=number,
        has_next=len(rows) > PAGE_SIZE,
        query=query,
    )


@PAGES.get("/letters/{letter_id:int}")
def letter(page: PageRequest) -> Response:
    """One letter: headers, rule hits (the deciding one marked), reply, filing, outbox state."""
    letter_id = int(page.request.path_params["letter_id"])
    with page.db() as session:
        try:
            story = letter_story(session, str(letter_id), page.web.config.general.timezone)
        except UnknownLetter:
            return page.render("not_found.html", status_code=404, what=f"Письмо {letter_id}")
        # The story masks the SNILS; an admin sees the registered one whole.
        snils = story.certificate.snils if story.certificate is not None else None
        if story.certificate is not None and story.certificate.registered_id is not None:
            record = session.get(CertificateRecord, story.certificate.registered_id)
            snils = record.snils if record is not None and record.snils else snils
    return page.render("letter.html", story=story, certificate_snils=snils)


@PAGES.get("/letters/{letter_id:int}/raw", role=Role.ADMIN)
def raw_letter(page: PageRequest) -> Response:
    """The archived raw letter as a download (admins only; every download is audited)."""
    letter_id = int(page.request.path_params["letter_id"])
    with page.db() as session:
        row = session.get(LetterRecord, letter_id)
        if row is None or not row.archive_path:
            return page.render("not_found.html", status_code=404, what=f"Копия письма {letter_id}")
        try:
            with Path(row.archive_path).open("rb") as archived:
                raw = archived.read(MAX_RAW_BYTES + 1)
        except OSError:
            return page.render("not_found.html", status_code=404, what=f"Копия письма {letter_id}")
        if len(raw) > MAX_RAW_BYTES:
            return page.render("not_found.html", status_code=404, what=f"Копия письма {letter_id}")
        page.audit(session, "letter.download", f"letter:{letter_id}", {"sha256": row.sha256})
        session.commit()
    return Response(
        raw,
        # Not message/rfc822: the browser must save it, never render a stranger's HTML.
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="letter-{letter_id}.eml"'},
    )


def _day(text: str, zone: ZoneInfo, problems: list[str]) -> dt.datetime | None:
    """The start of local day *text* (``ГГГГ-ММ-ДД``), None when empty or wrong."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        problems.append(f"дата {text[:20]!r} не в виде ГГГГ-ММ-ДД")
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=zone)
