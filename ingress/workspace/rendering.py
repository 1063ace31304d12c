"""The workspace's Jinja2 templates (packaged with the ingress), and what every page needs to render."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ingress.identity import Identity
from ingress.workspace import labels
from ingress.workspace.browser_auth import SIGN_IN, SignInNeeded

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Long enough to read a row and click, short enough that the inbox and the queue stay current.
REFRESH_SECONDS = 30

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals.update(
    stage=lambda code: labels.readable(labels.STAGES, code),
    owner=lambda code: labels.readable(labels.OWNERS, code),
    status=lambda code: labels.readable(labels.STATUSES, code),
    process=lambda code: labels.readable(labels.PROCESSES, code),
    role=lambda code: labels.readable(labels.ROLES, code),
    line_kind=lambda code: labels.readable(labels.LINE_KINDS, code),
    age_band=lambda code: labels.readable(labels.AGE_BANDS, code),
    age=labels.age,
    when=labels.when,
    money=lambda amount: f"{amount:,.2f}",
)


def page(request: Request, template: str, person: Identity, *, title: str, **context: Any) -> HTMLResponse:
    html = environment.get_template(template).render(
        title=title,
        person=person,
        path=request.url.path,
        notice=request.query_params.get("notice"),
        problem=request.query_params.get("problem"),
        refresh_seconds=REFRESH_SECONDS,
        **context,
    )
    return HTMLResponse(html)


def back_to(
    path: str, *, notice: str | None = None, problem: str | None = None, query: str = ""
) -> RedirectResponse:
    """After a form: back to the page (its filters kept), saying what happened (Post/Redirect/Get)."""
    said = {key: value for key, value in (("notice", notice), ("problem", problem)) if value}
    extra = "&".join(part for part in (query, urlencode(said)) if part)
    return RedirectResponse(f"{path}?{extra}" if extra else path, status_code=303)


def to_sign_in(request: Request, needed: SignInNeeded) -> RedirectResponse:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    parameters = {"next": wanted}
    if needed.problem:
        parameters["problem"] = needed.problem
    return RedirectResponse(f"{SIGN_IN}?{urlencode(parameters)}", status_code=303)
