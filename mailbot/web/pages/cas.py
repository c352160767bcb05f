"""CAs and CRLs: the CA directory with each CA's CRL state, one CA's page, the trust list.

The actions are the command line's code paths: "refresh the CRL now" is one
CA's step of ``mailbot crl refresh`` (then the revocation watch, as there),
deactivation is ``mailbot ca deactivate``, reactivation ``mailbot ca reactivate``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from mailbot.app.adapters import parsed
from mailbot.app.assembly import crl_store
from mailbot.app.ca_catalogue import (
    accredited_cas,
    ca_fields,
    certificate_counts,
    certificates_of,
    is_gone,
    list_counts,
    listed_key,
)
from mailbot.app.crl_refresh import caching_source, refresh_ca, watch_revocations
from mailbot.app.crl_status import CaCrl, ca_crl, current_meta
from mailbot.app.trust_list_import import newest_edition
from mailbot.directory.authorities import list_cas, set_ca_active
from mailbot.directory.models import AuditEntry, CertificationAuthority
from mailbot.directory.subscribers import DirectoryError
from mailbot.notices.templates import TemplateError
from mailbot.pki.fields import certificate_fields
from mailbot.web.context import PageRequest
from mailbot.web.guard import PageGroup
from mailbot.web.paging import page_number
from mailbot.web.roles import Role

PAGES = PageGroup()
PAGE_SIZE = 50
#: The audit action of "refresh the CRL now"; the CA's page shows the last one.
REFRESH_ACTION = "crl.refresh"


@dataclass(frozen=True)
class CaLine:
    """One row of the CA list: the CLI's columns, the CRL state, the certificates under it."""

    fields: dict[str, Any]
    crl: CaCrl
    #: An active CA without a current CRL (inactive ones are not checked against theirs).
    stale: bool
    age: str
    certificates: int


@PAGES.get("/cas")
def cas(page: PageRequest) -> Response:
    """Every registered CA with its origin, accreditation, CRL state and certificate count."""
    store = crl_store(page.web.config)
    now = page.now
    with page.db() as session:
        counts = certificate_counts(session)
        lines = []
        for row in list_cas(session):
            crl = ca_crl(store, row)
            lines.append(
                CaLine(
                    fields=ca_fields(session, row),
                    crl=crl,
                    stale=row.active and crl.stale_at(now),
                    age=age_text(crl.this_update, now),
                    certificates=counts.get(row.id, 0),
                )
            )
    return page.render("cas.html", lines=lines, zone=page.web.config.general.timezone)


@PAGES.get("/cas/{ca_id:int}")
def ca_page(page: PageRequest) -> Response:
    """One CA: its certificate, CRL URLs and state, the list's data, its certificates."""
    ca_id = int(page.request.path_params["ca_id"])
    number = page_number(page.request.query_params.get("page", "1"))
    store = crl_store(page.web.config)
    now = page.now
    with page.db() as session:
        row = session.get(CertificationAuthority, ca_id)
        if row is None:
            return page.render("not_found.html", status_code=404, what=f"УЦ {ca_id}")
        fields = ca_fields(session, row, details=True)
        listed = listed_key(session, row)
        certificate = parsed(row)
        meta = current_meta(store, row)
        crl = ca_crl(store, row)
        certificates = list(
            certificates_of(session, ca_id, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE)
        )
        total = certificate_counts(session).get(ca_id, 0)
        last_refresh = _last_refresh(session, ca_id)
        active = row.active
    return page.render(
        "ca.html",
        ca_id=ca_id,
        active=active,
        fields=fields,
        certificate=certificate_fields(certificate) if certificate is not None else None,
        own_crl_urls=certificate.crl_urls if certificate is not None else (),
        list_crl_urls=listed.crl_urls if listed is not None else (),
        meta=meta,
        crl=crl,
        stale=active and crl.stale_at(now),
        age=age_text(crl.this_update, now),
        certificates=certificates[:PAGE_SIZE],
        total=total,
        number=number,
        has_next=len(certificates) > PAGE_SIZE,
        last_refresh=last_refresh,
        zone=page.web.config.general.timezone,
    )


@PAGES.post("/cas/{ca_id:int}/refresh")
def refresh_now(page: PageRequest) -> Response:
    """Fetch a current CRL for one CA now (as ``mailbot crl refresh``), then the watch."""
    ca_id = int(page.request.path_params["ca_id"])
    config = page.web.config
    with page.db() as session:
        row = session.get(CertificationAuthority, ca_id)
        if row is None:
            return page.render("not_found.html", status_code=404, what=f"УЦ {ca_id}")
        # Network I/O under [crl]'s deadlines, in this handler's thread.
        result = refresh_ca(caching_source(config, session), row, page.now)
    details: dict[str, Any] = {
        "ok": result is not None and result.problem is None and result.this_update is not None,
        "problem": "the CA certificate does not parse" if result is None else result.problem,
        "crl_number": result.crl_number if result is not None else None,
        "this_update": _iso(result.this_update if result is not None else None),
        "next_update": _iso(result.next_update if result is not None else None),
    }
    try:
        report = watch_revocations(config, page.web.sessions, page.web.clock)
        details["revoked"] = len(report.revoked)
    except TemplateError:
        details["watch_problem"] = "templates are invalid: run mailbot config check"
    with page.db() as session:
        page.audit(session, REFRESH_ACTION, f"ca:{ca_id}", details)
        session.commit()
    return RedirectResponse(f"/cas/{ca_id}#crl", status_code=303)


@PAGES.post("/cas/{ca_id:int}/deactivate", role=Role.ADMIN)
def deactivate(page: PageRequest) -> Response:
    """Stop trusting a CA (``mailbot ca deactivate``): its certificates count as unknown."""
    return _set_active(page, active=False)


@PAGES.post("/cas/{ca_id:int}/reactivate", role=Role.ADMIN)
def reactivate(page: PageRequest) -> Response:
    """Trust a deactivated CA again (``mailbot ca reactivate``)."""
    return _set_active(page, active=True)


def _set_active(page: PageRequest, active: bool) -> Response:
    ca_id = int(page.request.path_params["ca_id"])
    with page.db() as session:
        try:
            row = set_ca_active(session, ca_id, active)
        except DirectoryError:
            return page.render("not_found.html", status_code=404, what=f"УЦ {ca_id}")
        action = "ca.reactivate" if active else "ca.deactivate"
        page.audit(session, action, f"ca:{ca_id}", {"name": row.name, "ski": row.ski})
        session.commit()
    return RedirectResponse(f"/cas/{ca_id}", status_code=303)


@PAGES.get("/trust-list")
def trust_list(page: PageRequest) -> Response:
    """The current edition of the accredited-CA list, its counts and its CAs (searchable)."""
    params = page.request.query_params
    search = params.get("q", "").strip()[:200]
    number = page_number(params.get("page", "1"))
    with page.db() as session:
        edition = newest_edition(session)
        counts = list_counts(session, edition.version) if edition is not None else None
        found = accredited_cas(session, search or None, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE)
        version = edition.version if edition is not None else 0
        authorities = [
            (authority, is_gone(authority, version), len(authority.keys))
            for authority in found[:PAGE_SIZE]
        ]
    return page.render(
        "trust_list.html",
        edition=edition,
        counts=counts,
        authorities=authorities,
        search=search,
        number=number,
        has_next=len(found) > PAGE_SIZE,
        query={"q": search} if search else {},
        zone=page.web.config.general.timezone,
    )


def _last_refresh(session: Session, ca_id: int) -> AuditEntry | None:
    """The newest "refresh now" of CA *ca_id* (the outcome the operator asked for)."""
    return session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == REFRESH_ACTION, AuditEntry.target == f"ca:{ca_id}")
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(1)
    ).first()


def age_text(since: dt.datetime | None, now: dt.datetime) -> str:
    """How long ago *since* was, in days and hours (``—`` for none)."""
    if since is None:
        return "—"
    hours = max(int((now - since).total_seconds() // 3600), 0)
    days, hours = divmod(hours, 24)
    return f"{days} д {hours} ч" if days else f"{hours} ч"


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
