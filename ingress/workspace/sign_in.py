"""Signing in and out of the workspace: the person's signed token goes into an HttpOnly, SameSite=Strict
cookie after the ingress has verified it, and out again on sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ingress.identity import TokenRefused, verify_token
from ingress.workspace.browser_auth import (
    COOKIE,
    SIGN_IN,
    SignInNeeded,
    check_same_origin,
    current_person,
    form_fields,
    served_over_https,
    single,
)
from ingress.workspace.rendering import environment, to_sign_in

router = APIRouter()

HOME = "/workspace/health"
# The person's own pages, where "next" may lead after signing in; anything else would be an open redirect.
PAGES = ("/workspace/inbox", "/workspace/exceptions", "/workspace/health")


def _next_page(requested: str | None) -> str:
    if not requested:
        return HOME
    parts = urlsplit(requested)
    if parts.scheme or parts.netloc or parts.path not in PAGES:
        return HOME
    return parts.path + (f"?{parts.query}" if parts.query else "")


@router.get("/workspace", include_in_schema=False)
async def workspace(request: Request) -> Response:
    try:
        person = current_person(request)
    except SignInNeeded as needed:
        return to_sign_in(request, needed)
    start = {"finance": "/workspace/inbox", "ops": "/workspace/exceptions"}.get(person.role, HOME)
    return RedirectResponse(start, status_code=303)


@router.get(SIGN_IN, response_class=HTMLResponse, include_in_schema=False)
async def sign_in_form(request: Request) -> HTMLResponse:
    html = environment.get_template("sign_in.html").render(
        title="Sign in",
        next=_next_page(request.query_params.get("next")),
        problem=request.query_params.get("problem"),
    )
    return HTMLResponse(html)


@router.post(SIGN_IN, include_in_schema=False)
async def sign_in(request: Request) -> Response:
    # Checked here too: a forged sign-in would put someone else's session in the person's browser.
    check_same_origin(request)
    fields = await form_fields(request)
    token = single(fields, "token")
    next_page = _next_page(single(fields, "next"))
    try:
        verify_token(request.app.state.settings, token)
    except TokenRefused as refused:
        return to_sign_in(request, SignInNeeded(f"that token was refused: {refused}"))
    response = RedirectResponse(next_page, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=served_over_https(request),
        path="/",
    )
    return response


@router.post("/workspace/sign-out", include_in_schema=False)
async def sign_out(request: Request) -> Response:
    check_same_origin(request)
    response = RedirectResponse(SIGN_IN, status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
