"""The messages page's routes: sign-in, the inbox and archive, the thread pane and its actions.

Server-rendered (Jinja2, autoescaped: every customer text is shown as text) with htmx for
partial updates; every link and form also works without JavaScript (a full page comes back,
or a 303 to it). Every page, partial and download checks the session cookie (a missing or
bad one: the sign-in page, or 401 for a partial); every POST also needs the session's CSRF
token (form field ``csrf`` or header ``X-CSRF-Token``; without it: 403, nothing done). The
page reads and writes through the same services as the API (:class:`InboxService`, the send
path, session actions, moves, consent), so nothing lives only in the page. In local mode a
browser on the loopback interface is signed in on its first visit.

Signing in takes an API key (the page then acts as the connector) or, when configured,
"Sign in with Microsoft" (:mod:`connector.web.microsoft`): the session then carries the
user's Entra object id, and the session actions (accept, dismiss, block, assign) and moves
send their Dataverse writes with ``CallerObjectId`` exactly as the API does, so Dataverse
decides; a refusal is shown as such and nothing changes.
"""

from __future__ import annotations

import functools
import io
import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from connector.dataverse.caller import acting_as
from connector.domain.consent import ConsentMethod
from connector.domain.inbox import Folder
from connector.domain.model import MessageCategory
from connector.domain.routing import RecordRef
from connector.domain.segments import count_segments
from connector.errors import ConnectorError, DataverseError, ForbiddenError, NotFoundError
from connector.services.export import write_csv
from connector.services.inbox import InboxService
from connector.services.outbound import SendOrder, SendOrigin
from connector.web import auth, microsoft
from connector.web.views import thread_context, when
from connector.web.wiring import PageServices

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {
    "htmx.min.js": "text/javascript",
    "page.css": "text/css",
    "htmx-LICENSE.txt": "text/plain",
}
_TEMPLATES = Environment(
    loader=PackageLoader("connector.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["when"] = when
INLINE_MEDIA = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(
    name: str, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """A template rendered as an HTML answer with the page's security headers."""
    html = _TEMPLATES.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "testclient"  # Starlette's in-process test client


def _htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


class NotSignedInError(Exception):
    """The request carries no valid session."""


class CsrfError(Exception):
    """A POST without its session's CSRF token."""


def off_the_loop(handler: Callable[..., Response]) -> Callable[..., Awaitable[Response]]:
    """Run ``handler`` in the thread pool: the page's handlers read and write Dataverse, and
    the event loop must stay free for provider webhooks. A POST's form is read first, on the
    loop (the handler finds it in ``request.state.form``)."""

    @functools.wraps(handler)
    async def run(*args: Any, **kwargs: Any) -> Response:
        request = kwargs.get("request")  # the static files' route has none
        if request is not None and request.method == "POST":
            request.state.form = {k: str(v) for k, v in (await request.form()).items()}
        return await run_in_threadpool(handler, *args, **kwargs)

    return run


def guarded(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Answer a request without a session with the sign-in page (a partial or a POST: 401
    with ``HX-Redirect``), and a POST without its CSRF token with 403."""

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Response:
        request = kwargs["request"]
        try:
            return handler(*args, **kwargs)
        except NotSignedInError:
            if _htmx(request) or request.method != "GET":
                return Response(status_code=401, headers={"HX-Redirect": "/"})
            return RedirectResponse("/", status_code=303)
        except CsrfError:
            return render("error.html", 403, message="Missing or wrong CSRF token.")

    return run


def _folder(request: Request) -> Folder:
    value = request.query_params.get("folder")
    return Folder.ARCHIVED if value == "archived" else Folder.INBOX


class MessagesPage:
    """The page's handlers around ``services`` (routes: :func:`page_router`)."""

    def __init__(self, services: PageServices) -> None:
        self.services = services

    def session_of(self, request: Request) -> auth.PageSession:
        found = auth.verify(request.cookies.get(auth.COOKIE), self.services.keys())
        if found is None:
            raise NotSignedInError
        return found

    def checked_form(self, request: Request) -> tuple[auth.PageSession, dict[str, str]]:
        signed_in = self.session_of(request)
        form: dict[str, str] = request.state.form
        token = request.headers.get("x-csrf-token") or form.get("csrf")
        if not signed_in.csrf_ok(token):
            raise CsrfError
        return signed_in, form

    def inbox(self) -> InboxService:
        if self.services.inbox is None:
            raise NotFoundError("conversations are not enabled in this process")
        return self.services.inbox

    def full_page(
        self, request: Request, signed_in: auth.PageSession, **extra: Any
    ) -> HTMLResponse:
        folder = _folder(request)
        query = (request.query_params.get("q") or "")[:100]
        service = self.inbox()
        rows = service.conversations(folder, query)
        selected = request.query_params.get("session")
        context: dict[str, Any] = {
            "csrf": signed_in.csrf(),
            "user_id": signed_in.user_id,
            "folder": folder.value,
            "query": query,
            "rows": [(r, service.consent(r.phone, r.configuration_id)) for r in rows],
            "selected": selected,
            "thread": None,
        }
        if selected:
            context["thread"] = thread_context(
                self.services, signed_in, selected, notice=extra.get("notice")
            )
        return render("messages.html", **context)

    # -- signing in and out ----------------------------------------------------------------
    def home(self, request: Request) -> Response:
        """The sign-in page, or straight to the messages when signed in (or local)."""
        if auth.verify(request.cookies.get(auth.COOKIE), self.services.keys()) is not None:
            return RedirectResponse("/messages", status_code=303)
        if self.services.local_open and _loopback(request):
            answer = RedirectResponse("/messages", status_code=303)
            self.set_cookie(answer, auth.issue(self.services.local_key, None))
            return answer
        return render("signin.html", error=None, microsoft=self.services.microsoft is not None)

    def set_cookie(self, answer: Response, value: str) -> None:
        answer.set_cookie(
            auth.COOKIE,
            value,
            max_age=auth.LIFETIME_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self.services.secure_cookie,
            path="/",
        )

    def signin(self, request: Request) -> Response:
        """Exchange an API key for the session cookie."""
        form: dict[str, str] = request.state.form
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") != str(request.base_url).rstrip("/"):
            return render("error.html", 403, message="Sign-in from another site refused.")
        presented = str(form.get("api_key") or "")
        key = auth.key_for(presented, [k.get_secret_value() for k in self.services.api_keys])
        if key is None:
            return render(
                "signin.html",
                401,
                error="That API key is not valid.",
                microsoft=self.services.microsoft is not None,
            )
        user = str(form.get("user_id") or "").strip()[:64] or None
        answer = RedirectResponse("/messages", status_code=303)
        self.set_cookie(answer, auth.issue(key, user))
        return answer

    def microsoft_start(self, request: Request) -> Response:
        """Off to Microsoft's sign-in, the flow (state, nonce, PKCE verifier) in a cookie."""
        signin = self.services.microsoft
        if signin is None:
            return render("error.html", 404, message="Sign in with Microsoft is not set up.")
        try:
            auth_uri, flow = signin.start(signin.redirect_uri(str(request.base_url)))
        except ConnectorError as exc:
            return self._signin_refused(503, exc.message)
        answer = RedirectResponse(auth_uri, status_code=303)
        answer.set_cookie(
            microsoft.FLOW_COOKIE,
            auth.seal(signin.key(), {"flow": flow}, microsoft.FLOW_LIFETIME_SECONDS),
            max_age=microsoft.FLOW_LIFETIME_SECONDS,
            httponly=True,
            samesite="none",  # it must come back with Microsoft's cross-site form post
            secure=True,
            path=microsoft.CALLBACK_PATH,
        )
        return answer

    def microsoft_callback(self, request: Request) -> Response:
        """Back from Microsoft: redeem the code, check the user's token as the API does."""
        signin = self.services.microsoft
        if signin is None:
            return render("error.html", 404, message="Sign in with Microsoft is not set up.")
        opened = auth.unseal(request.cookies.get(microsoft.FLOW_COOKIE), [signin.key()], limit=4000)
        if opened is None or not isinstance(opened[0].get("flow"), dict):
            return self._signin_refused(400, "This sign-in expired or did not start here.")
        params: dict[str, str] = (
            request.state.form
            if request.method == "POST"
            else {k: str(v) for k, v in request.query_params.items()}
        )
        try:
            object_id, systemuser_id = signin.finish(opened[0]["flow"], params)
        except ConnectorError as exc:
            return self._signin_refused(status_for_signin(exc), exc.message)
        # A page of our own, not a redirect: the SameSite=Strict cookie is then sent with the
        # next (same-site) navigation, which a redirect chain begun at Microsoft would not be.
        answer = render("signed_in.html")
        self.set_cookie(answer, auth.issue(signin.key(), systemuser_id, object_id=object_id))
        self._forget_flow(answer)
        return answer

    def _forget_flow(self, answer: Response) -> None:
        answer.delete_cookie(
            microsoft.FLOW_COOKIE,
            path=microsoft.CALLBACK_PATH,
            secure=True,
            httponly=True,
            samesite="none",
        )

    def _signin_refused(self, status: int, message: str) -> Response:
        answer = render("signin.html", status, error=message, microsoft=True)
        self._forget_flow(answer)
        return answer

    def signout(self, request: Request) -> Response:
        """Forget the session cookie."""
        self.checked_form(request)
        answer = render(
            "signin.html",
            error=None,
            signed_out=True,
            microsoft=self.services.microsoft is not None,
        )
        answer.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    # -- the page and its partials ---------------------------------------------------------
    def messages(self, request: Request) -> Response:
        """The whole page: tabs, search, the folder, and the selected thread."""
        return self.full_page(request, self.session_of(request))

    def folder_list(self, request: Request) -> Response:
        """The folder alone (htmx polls it)."""
        signed_in = self.session_of(request)
        folder = _folder(request)
        query = (request.query_params.get("q") or "")[:100]
        service = self.inbox()
        rows = service.conversations(folder, query)
        return render(
            "_list.html",
            csrf=signed_in.csrf(),
            folder=folder.value,
            query=query,
            rows=[(r, service.consent(r.phone, r.configuration_id)) for r in rows],
            selected=request.query_params.get("session"),
        )

    def thread(self, request: Request, session_id: str) -> Response:
        """One conversation (opening it marks it read)."""
        signed_in = self.session_of(request)
        if not _htmx(request):
            return RedirectResponse(f"/messages?session={session_id}", status_code=303)
        context = thread_context(self.services, signed_in, session_id)
        return render(
            "_thread.html",
            headers={"HX-Trigger": "inbox-changed"},
            csrf=signed_in.csrf(),
            thread=context,
        )

    def thread_messages(self, request: Request, session_id: str) -> Response:
        """The thread's messages alone (htmx polls it: delivery status as it changes)."""
        self.session_of(request)
        opened = self.inbox().thread(session_id, mark_read=False)
        return render("_messages.html", messages=opened.messages)

    def compose(self, request: Request) -> Response:
        """The reply's preview: a template rendered for this conversation, or the typed
        text, with its segment count, encoding and the characters forcing UCS-2."""
        self.session_of(request)
        params = request.query_params
        template_id = params.get("template_id") or None
        text = (params.get("body") or "")[:2000]
        error = None
        if template_id and self.services.sender is not None:
            session = self.inbox().session(params.get("session", ""))
            ref = (
                RecordRef(session.regarding_table, session.regarding_id)
                if session.regarding_table and session.regarding_id
                else None
            )
            try:
                text = self.services.sender.preview(template_id, ref, session.configuration_id).body
            except ConnectorError as exc:
                error = exc.message
        info = count_segments(text) if text else None
        return render(
            "_preview.html", text=text, info=info, error=error, template=bool(template_id)
        )

    def records(self, request: Request) -> Response:
        """Records to move a conversation to, by name or number."""
        self.session_of(request)
        text = (request.query_params.get("q") or "")[:100]
        return render("_records.html", matches=self.inbox().find_records(text), query=text)

    # -- actions ---------------------------------------------------------------------------
    def act(self, request: Request, session_id: str, action: str) -> Response:
        """Reply, mark, accept/dismiss/block/assign, move, create a record, consent."""
        signed_in, form = self.checked_form(request)
        notice: str | None = None
        try:
            notice = run_action(
                self.services,
                self.inbox(),
                session_id,
                action=action,
                form=form,
                signed_in=signed_in,
            )
        except ConnectorError as exc:
            notice = f"Not done: {exc.message}"
        if not _htmx(request):
            return RedirectResponse(f"/messages?session={session_id}", status_code=303)
        context = thread_context(
            self.services, signed_in, session_id, notice=notice, mark_read=False
        )
        return render(
            "_thread.html",
            headers={"HX-Trigger": "inbox-changed"},
            csrf=signed_in.csrf(),
            thread=context,
        )

    # -- downloads -------------------------------------------------------------------------
    def csv_answer(self, name: str, session_id: str | None) -> Response:
        if self.services.archive is None:
            raise NotFoundError("downloads are not enabled in this process")
        out = io.StringIO()
        write_csv(self.services.archive.messages(session_id=session_id), out)
        return Response(
            out.getvalue().encode("utf-8-sig"),
            media_type="text/csv; charset=utf-8",
            headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    def download_thread(self, request: Request, session_id: str) -> Response:
        """This conversation as CSV (the export's columns, formula text defused)."""
        self.session_of(request)
        self.inbox().session(session_id)  # 404 for a session nobody has
        return self.csv_answer(f"conversation-{session_id}.csv", session_id)

    def media(self, request: Request, note_id: str) -> Response:
        """An MMS attachment of a message: an image shown inline (thumbnails), anything
        else downloaded; never rendered as a page of ours."""
        self.session_of(request)
        found = self.inbox().media(note_id)
        image = found.mimetype in INLINE_MEDIA
        name = "".join(c for c in found.filename if c.isalnum() or c in "._-")[:100] or "file"
        disposition = "inline" if image else "attachment"
        return Response(
            found.data,
            media_type=found.mimetype if image else "application/octet-stream",
            headers={
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=3600",
                "Content-Disposition": f'{disposition}; filename="{name}"',
            },
        )

    def download_all(self, request: Request) -> Response:
        """Every message as CSV."""
        self.session_of(request)
        return self.csv_answer("messages.csv", None)

    def static(self, name: str) -> Response:
        """The page's style sheet and htmx (shipped in the package)."""
        if name not in STATIC_FILES:
            return Response(status_code=404)
        data = (STATIC / name).read_bytes()
        return Response(
            data,
            media_type=STATIC_FILES[name],
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )


def page_router(services: PageServices) -> APIRouter:
    """The messages page's routes around ``services``."""
    page = MessagesPage(services)
    router = APIRouter(include_in_schema=False)
    routes = (
        ("GET", "/", page.home),
        ("POST", "/signin", page.signin),
        ("GET", "/signin/microsoft", page.microsoft_start),
        ("GET", microsoft.CALLBACK_PATH, page.microsoft_callback),
        ("POST", microsoft.CALLBACK_PATH, page.microsoft_callback),
        ("POST", "/signout", page.signout),
        ("GET", "/messages", page.messages),
        ("GET", "/messages/list", page.folder_list),
        ("GET", "/messages/thread/{session_id}", page.thread),
        ("GET", "/messages/thread/{session_id}/messages", page.thread_messages),
        ("GET", "/messages/compose", page.compose),
        ("GET", "/messages/records", page.records),
        ("POST", "/messages/thread/{session_id}/{action}", page.act),
        ("GET", "/messages/thread/{session_id}/download", page.download_thread),
        ("GET", "/messages/download", page.download_all),
        ("GET", "/messages/media/{note_id}", page.media),
        ("GET", "/static/page/{name}", page.static),
    )
    for method, path, endpoint in routes:
        call = endpoint if path in _OPEN else guarded(endpoint)
        router.add_api_route(path, off_the_loop(call), methods=[method], response_model=None)
    return router


_OPEN = frozenset(
    {"/", "/signin", "/signin/microsoft", microsoft.CALLBACK_PATH, "/static/page/{name}"}
)


def status_for_signin(exc: ConnectorError) -> int:
    """401 for a sign-in Microsoft or our token check refused, 403 for a missing scope,
    503 when the identity provider could not be used."""
    if isinstance(exc, microsoft.SignInError):
        return 503
    return 403 if exc.code in ("forbidden", "insufficient_scope") else 401


def run_action(
    services: PageServices,
    inbox: InboxService,
    session_id: str,
    *,
    action: str,
    form: Mapping[str, str],
    signed_in: auth.PageSession,
) -> str:
    """Carry out one thread action; the notice shown for it."""
    if signed_in.object_id is not None:  # a Microsoft user: the body names nobody else
        user = signed_in.user_id
    else:
        user = (form.get("user_id") or signed_in.user_id or "").strip() or None
    if action in ("read", "unread", "archive", "unarchive"):
        inbox.mark(session_id, action)
        return {
            "read": "Marked read.",
            "unread": "Marked unread.",
            "archive": "Archived.",
            "unarchive": "Moved back to the inbox.",
        }[action]
    if action == "reply":
        return _reply(services, inbox, session_id, form)
    if action in ("accept", "dismiss", "block", "assign"):
        with as_user(signed_in):
            return _session_action(services, session_id, action, form, user)
    if action == "move":
        if services.mover is None:
            raise NotFoundError("moves are not enabled")
        table, _, record_id = (form.get("record") or "").partition(":")
        with as_user(signed_in):
            result = services.mover.move(session_id, RecordRef(table, record_id))
        return f"Moved to the {result.target.table} ({result.messages_moved} messages)."
    if action == "create-record":
        fields = {k: form.get(k, "") for k in ("firstname", "lastname", "email")}
        created = inbox.create_record(session_id, form.get("table", "lead"), fields)
        return f"Created {created.record.table} {created.record.name} and linked the conversation."
    if action in ("opt-out", "opt-in"):
        return _consent(services, inbox, session_id, action)
    raise NotFoundError(f"no such action: {action}")


@contextmanager
def as_user(signed_in: auth.PageSession) -> Iterator[None]:
    """Dataverse writes inside act as the signed-in Microsoft user (``CallerObjectId``), as
    the API's do for a user token; Dataverse refusing that user becomes a clear refusal.
    An API-key session acts as the connector."""
    with acting_as(signed_in.object_id):
        try:
            yield
        except DataverseError as exc:
            if signed_in.object_id is not None and exc.status == 403:
                raise ForbiddenError(
                    "Dataverse does not allow you to change this conversation "
                    "(it is not yours); nothing was changed"
                ) from exc
            raise


def _reply(
    services: PageServices, inbox: InboxService, session_id: str, form: Mapping[str, str]
) -> str:
    if services.sender is None:
        raise NotFoundError("sending is not enabled")
    session = inbox.session(session_id)
    template_id = form.get("template_id") or None
    body = (form.get("body") or "").strip() or None
    regarding = None
    if session.regarding_table and session.regarding_id:
        regarding = RecordRef(session.regarding_table, session.regarding_id)
    order = SendOrder(
        body=None if template_id else body,
        to=session.phone,
        configuration_id=form.get("configuration_id") or session.configuration_id,
        regarding=regarding,
        template_id=template_id,
        origin=SendOrigin.AGENT,
    )
    answer = services.sender.send(order)
    return f"Reply queued ({answer.get('segments')} segment(s), {answer.get('encoding')})."


def _session_action(
    services: PageServices, session_id: str, action: str, form: Mapping[str, str], user: str | None
) -> str:
    actions = services.actions
    if actions is None:
        raise NotFoundError("session actions are not enabled")
    if action == "block":
        actions.block(session_id, user)
        return "Number blocked for this sender."
    if action == "assign":
        owner = (form.get("owner_id") or "").strip()
        actions.assign(session_id, owner, team=form.get("owner_type") == "team")
        return "Assigned."
    if not user:
        raise NotFoundError("give your Dataverse user id to accept or dismiss")
    if action == "accept":
        actions.accept(session_id, user)
        return "Accepted: the conversation is yours."
    actions.dismiss(session_id, user)
    return "Dismissed."


def _consent(services: PageServices, inbox: InboxService, session_id: str, action: str) -> str:
    if services.consent is None:
        raise NotFoundError("consent requests are not enabled")
    session = inbox.session(session_id)
    if action == "opt-out":
        services.consent.record_opt_out(
            session.phone, session.configuration_id, None, "messages page", method=ConsentMethod.API
        )
        return "Opt-out recorded for every purpose with this sender."
    answer = services.consent.request_opt_in(
        session.phone, session.configuration_id, MessageCategory.COMMERCIAL, "messages page"
    )
    sent = answer.get("confirmation_sent")
    return (
        "Opt-in request sent (the customer replies YES)."
        if sent
        else "No request sent: already opted in or pending."
    )
