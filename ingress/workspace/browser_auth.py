"""Who is at the browser, and whether a form really came from our own pages.

A person signs in by pasting their signed token (the same JWT every people-facing endpoint verifies) into
the sign-in form; it is kept in an HttpOnly, SameSite=Strict cookie, so page scripts cannot read it and no
other site's page can send it. The ops page's ways still work too: `Authorization: Bearer <token>`, or HTTP
Basic with the token as the password.

Cross-site request forgery: the cookie is SameSite=Strict, and every state-changing form is also refused
unless its Origin (or, from a browser that sends none, its Referer) is this ingress's own origin: the one the
request reached or `ingress_public_url`. Nothing
about the person comes from a form: the actor is always the verified token's.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request

from ingress.identity import Identity, TokenRefused, verify_token

COOKIE = "pssync_session"
SIGN_IN = "/workspace/sign-in"


class SignInNeeded(Exception):
    """No credentials at all: a browser is sent to the sign-in form rather than shown a 401."""

    def __init__(self, problem: str | None = None) -> None:
        super().__init__(problem or "sign in to continue")
        self.problem = problem


def _presented_token(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                raise HTTPException(401, "malformed Basic credentials") from None
        raise HTTPException(401, f"unsupported authorization scheme {scheme!r}")
    return request.cookies.get(COOKIE)


def current_person(request: Request) -> Identity:
    token = _presented_token(request)
    if not token:
        raise SignInNeeded()
    try:
        return verify_token(request.app.state.settings, token)
    except TokenRefused as refused:
        # An expired or revoked session cookie: back to the sign-in form, saying why.
        raise SignInNeeded(str(refused)) from None


def own_origins(request: Request) -> set[str]:
    """The origin the request reached, and the public one: behind a proxy that terminates TLS they differ."""
    public = urlsplit(request.app.state.settings.ingress_public_url)
    return {f"{request.url.scheme}://{request.url.netloc}", f"{public.scheme}://{public.netloc}"}


def served_over_https(request: Request) -> bool:
    public: str = request.app.state.settings.ingress_public_url
    return request.url.scheme == "https" or public.startswith("https://")


def check_same_origin(request: Request) -> None:
    """Refuse a state-changing request that another site's page could have sent."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if referer:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin not in own_origins(request):
        raise HTTPException(403, "refused: this form was not sent from a ps-sync page (Origin check)")


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The url-encoded form, every value of each field (the bulk form repeats `exception_id`)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def single(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0].strip()
