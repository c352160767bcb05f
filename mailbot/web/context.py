"""What every page handler gets: the application's shared parts and the request's own."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mailbot.config import Config
from mailbot.log import mask_identifier
from mailbot.web import audit
from mailbot.web.roles import Role
from mailbot.web.sessions import CookieSigner, SessionState
from mailbot.web.throttle import LoginThrottle

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class WebContext:
    """The application's shared parts, built once by :func:`mailbot.web.app.create_app`."""

    config: Config
    sessions: sessionmaker[Session]
    signer: CookieSigner
    templates: Environment
    throttle: LoginThrottle
    clock: Clock = system_clock

    def trusted_proxy(self, peer: str | None) -> bool:
        """Whether *peer* is one of ``web.trusted_proxies``."""
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address == ipaddress.ip_address(p) for p in self.config.web.trusted_proxies)


@dataclass(frozen=True)
class Account:
    """The logged-in web user (a plain copy: no database session behind it)."""

    id: int
    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        """Whether this account's role allows what *needed* allows."""
        return self.role.allows(needed)


@dataclass
class PageRequest:
    """One request as a page handler sees it (handlers are synchronous, run in a thread)."""

    request: Request
    web: WebContext
    #: None only on public pages (the login).
    account: Account | None
    session: SessionState
    #: The submitted form of a POST (its CSRF token already checked); empty for GET.
    form: Mapping[str, str] = field(default_factory=dict)
    #: The uploaded files of a multipart POST (at most one: read ``.file`` with a bound).
    files: Mapping[str, UploadFile] = field(default_factory=dict)
    #: The client's address (the proxy's X-Forwarded-For when it is trusted).
    client: str = ""
    #: The session after the handler (login and logout replace it).
    new_session: SessionState | None = None

    @property
    def user(self) -> Account:
        """The logged-in account (guarded pages always have one)."""
        assert self.account is not None, "a public page has no user"
        return self.account

    @property
    def now(self) -> dt.datetime:
        """The application clock's current time (UTC)."""
        return self.web.clock()

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A database session (commit it yourself after a change)."""
        with self.web.sessions() as session:
            yield session

    def audit(
        self, session: Session, action: str, target: str = "", details: dict[str, Any] | None = None
    ) -> None:
        """Journal a change by the logged-in user in *session*'s transaction (commit both)."""
        audit.record(session, self.user.name, action, target, details, at=self.now)

    def file_bytes(self, name: str, limit: int) -> bytes | None:
        """The uploaded file *name*'s bytes (``b""`` when none was sent); None over *limit*."""
        upload = self.files.get(name)
        if upload is None:
            return b""
        upload.file.seek(0)
        data = upload.file.read(limit + 1)
        return None if len(data) > limit else data

    def snils(self, value: str | None) -> str:
        """A SNILS as this user may see it: whole for admins, else its last two digits."""
        if not value:
            return "—"
        if self.account is not None and self.account.may(Role.ADMIN):
            return value
        return mask_identifier(value) or "—"

    def csrf_field(self) -> Markup:
        """The hidden form field every ``<form method="post">`` must carry."""
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(
            escape(self.session.csrf)
        )

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        """Render ``templates/web/<template>`` with the page's standard context."""
        page = self.web.templates.get_template(template)
        html = page.render(
            user=self.account,
            csrf_field=self.csrf_field,
            snils=self.snils,
            path=self.request.url.path,
            Role=Role,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)
