"""Every page goes through :func:`guarded`: session, user, role, CSRF, the cookie on the way out.

A page module declares its pages on a :class:`PageGroup`::

    PAGES = PageGroup()

    @PAGES.get("/journal")                       # viewers and up
    def journal(page: PageRequest) -> Response: ...

    @PAGES.post("/users/{name}/disable", role=Role.ADMIN)
    def disable(page: PageRequest) -> Response: ...

and :mod:`mailbot.web.app` mounts every group of :data:`mailbot.web.pages.PAGE_MODULES`.
There is no other way to add a route, so no page can forget a check:

* no (valid) session: a redirect to the login page, for GET and POST alike;
* a role below the page's: 403;
* a POST whose ``csrf_token`` field differs from the session's: 403.
"""

from __future__ import annotations

import hmac
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mailbot.directory.models import WebUser
from mailbot.web import sessions
from mailbot.web.accounts import credential_stamp, find_user
from mailbot.web.body_limit import declared_length
from mailbot.web.context import Account, PageRequest, WebContext
from mailbot.web.roles import Role
from mailbot.web.sessions import COOKIE_NAME, SessionState

Handler = Callable[[PageRequest], Response]
#: The login page's path (where a request without a session is sent).
LOGIN_PATH = "/login"
#: Limits on a submitted form: the console's forms are small.
MAX_FORM_FIELDS = 200
MAX_FORM_FILES = 1
MAX_PART_BYTES = 1024 * 1024
#: A POST without a logged-in account (the login form) declares at most this many bytes.
MAX_ANONYMOUS_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Page:
    """One route: its path, methods, handler and the least role it needs (None: public)."""

    path: str
    handler: Handler
    methods: tuple[str, ...]
    role: Role | None
    name: str


@dataclass
class PageGroup:
    """The pages of one module, declared with :meth:`get` and :meth:`post`."""

    pages: list[Page] = field(default_factory=list)

    def get(self, path: str, role: Role | None = Role.VIEWER) -> Callable[[Handler], Handler]:
        """Declare a GET page needing *role* (None: public, for the login only)."""
        return self._add(path, ("GET",), role)

    def post(self, path: str, role: Role | None = Role.OPERATOR) -> Callable[[Handler], Handler]:
        """Declare a state-changing POST (CSRF-checked) needing *role* (default operator)."""
        return self._add(path, ("POST",), role)

    def _add(
        self, path: str, methods: tuple[str, ...], role: Role | None
    ) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            self.pages.append(Page(path, handler, methods, role, handler.__name__))
            return handler

        return declare


def route(page: Page, web: WebContext) -> Route:
    """The Starlette route of *page*, guarded."""

    async def endpoint(request: Request) -> Response:
        return await guarded(page, web, request)

    return Route(page.path, endpoint, methods=list(page.methods), name=page.name)


async def guarded(page: Page, web: WebContext, request: Request) -> Response:
    """Check session, role and CSRF, run the page's handler in a thread, refresh the cookie."""
    now = web.clock().timestamp()
    config = web.config.web
    state = web.signer.load(request.cookies.get(COOKIE_NAME))
    expired = state is not None and state.expired(
        now, config.session_idle_minutes * 60, config.session_absolute_hours * 3600
    )
    if state is None or expired:
        state = sessions.anonymous()
    account = await run_in_threadpool(_account, web, request, state)
    if account is None and state.user_id is not None:
        state = sessions.anonymous()  # disabled, deleted, or a changed password or role
    if page.role is not None:
        if account is None:
            return _with_cookie(_to_login(request, expired), web, request, state)
        if not account.may(page.role):
            return _with_cookie(_refused(web, "Недостаточно прав"), web, request, state)
    form: dict[str, str] = {}
    files: dict[str, UploadFile] = {}
    if request.method == "POST":
        if account is None and not _small_enough(request):
            # The only public form is the login: nobody unknown sends more than a few KiB.
            return _with_cookie(_refused(web, "Слишком большой запрос"), web, request, state)
        submitted = await _form(request)
        if submitted is None or not _token_matches(submitted.get("csrf_token"), state.csrf):
            return _with_cookie(
                _refused(web, "Форма устарела или подделана: откройте страницу заново"),
                web, request, state,
            )  # fmt: skip
        form = {k: v for k, v in submitted.items() if isinstance(v, str)}
        files = {k: v for k, v in submitted.items() if isinstance(v, UploadFile)}
    context = PageRequest(
        request=request,
        web=web,
        account=account,
        session=state,
        form=form,
        files=files,
        client=client_address(web, request),
    )
    response = await run_in_threadpool(page.handler, context)
    final = context.new_session or state.touched(now)
    return _with_cookie(response, web, request, final)


def _account(web: WebContext, request: Request, state: SessionState) -> Account | None:
    """The account behind the request: the trusted proxy's header, else the session's."""
    header = web.config.web.proxy_user_header
    peer = request.client.host if request.client else None
    with web.sessions() as session:
        if header and web.trusted_proxy(peer) and request.headers.get(header):
            user = find_user(session, request.headers[header].strip())
            return _as_account(user) if user is not None and user.active else None
        if state.user_id is None:
            return None
        user = session.get(WebUser, state.user_id)
        if user is None or not user.active or credential_stamp(user) != state.stamp:
            return None
        return _as_account(user)


def _as_account(user: WebUser) -> Account:
    return Account(id=user.id, name=user.name, role=Role(user.role))


async def _form(request: Request) -> FormData | None:
    """The submitted form, or None when it is not one or exceeds the limits."""
    try:
        return await request.form(
            max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_PART_BYTES
        )
    except Exception:  # a malformed body of any kind is refused the same way
        return None


def _small_enough(request: Request) -> bool:
    declared = declared_length(request.scope)
    return declared is not None and declared <= MAX_ANONYMOUS_BODY_BYTES


def _token_matches(submitted: object, expected: str) -> bool:
    if not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), expected.encode())


def _to_login(request: Request, expired: bool) -> Response:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    query = {"next": target}
    if expired:
        query["expired"] = "1"
    return RedirectResponse(f"{LOGIN_PATH}?{urllib.parse.urlencode(query)}", status_code=303)


def _refused(web: WebContext, reason: str, status: int = 403) -> Response:
    html = web.templates.get_template("refused.html").render(user=None, reason=reason, path="")
    return Response(html, status_code=status, media_type="text/html")


def is_https(web: WebContext, request: Request) -> bool:
    """Whether the browser reached us over TLS: directly, or through a trusted proxy saying so."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-proto", "").strip().lower()
    return web.trusted_proxy(peer) and forwarded == "https"


def client_address(web: WebContext, request: Request) -> str:
    """The client's address: a trusted proxy's last X-Forwarded-For hop, else the peer's."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded and web.trusted_proxy(peer):
        # The proxy appends the address it saw; anything before it the client wrote.
        return forwarded.split(",")[-1].strip()[:100] or peer
    return peer


def _with_cookie(
    response: Response, web: WebContext, request: Request, state: SessionState
) -> Response:
    config = web.config.web
    response.set_cookie(
        COOKIE_NAME,
        web.signer.dump(state),
        # The browser may drop it at the absolute limit; the server checks both limits anyway.
        max_age=config.session_absolute_hours * 3600,
        path="/",
        secure=is_https(web, request),
        httponly=True,
        samesite="strict",
    )
    return response


def safe_next(target: str | None) -> str:
    """A post-login destination on this site only (no ``//host`` or ``/\\host``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
