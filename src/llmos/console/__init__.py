"""The web console: static assets (plain ES modules, one stylesheet, hand-written SVG
charts; no build step, nothing fetched from a CDN) served by the API app under
`/console/`, same origin as the API, calling only its HTTP control plane.

Why no JavaScript toolchain: the console is a thin view over JSON routes (tables, forms,
a few bar and line charts), which modern browsers do with `fetch`, ES modules and SVG;
a bundler would add a second package ecosystem to install, pin and audit for no feature
a user sees, and the shipped files would no longer be the reviewed source.

How the token is kept from other sites (and why there is no CSRF token):

- The token lives in the tab's `sessionStorage` (gone when the tab closes; never in a
  cookie, never in a URL) and travels only in the `Authorization: Bearer` header that
  the console's own `fetch` calls set. The server sets no cookie at all, so a request
  another site makes the browser send (a form post, an image, a `fetch` with
  credentials) carries no credential and is refused 401 like any anonymous call: there
  is nothing for a cross-site request forgery to ride on.
- `sessionStorage` is readable only by scripts of this origin. The console's pages are
  served with a strict Content-Security-Policy (`script-src 'self'`, no inline script,
  no `eval`, `connect-src 'self'`, `frame-ancestors 'none'`, `form-action 'none'`), so
  neither an injected inline script nor a third-party script can run to read it, and
  the pages cannot be framed (click-jacking). The console writes server data into the
  page only as text (`textContent`), never as HTML.
- The API sends no CORS headers, so a script on another origin cannot set the
  `Authorization` header on a request here (the preflight fails), nor read an answer.

A token the server stops accepting (expired, revoked, its user removed) gets 401 on
the next call; the console then forgets it and returns to sign-in with the server's
message. Role-awareness is a convenience (a viewer is not shown buttons that change
state); the server's policy decides every request regardless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from llmos.api.access import PUBLIC, needs
from llmos.core.errors import NotFoundError

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def asset(path: str) -> Path:
    """The file under `static/` that `path` names (index.html for the folder itself);
    NotFoundError for anything else, a path that climbs out included."""
    target = (STATIC / (path or "index.html")).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file() or target.suffix not in TYPES:
        raise NotFoundError(f"console file {path!r} not found")
    return target


def router(allow: Any) -> APIRouter:
    """`GET /console/...`: the console's files (public: they hold no workspace data), and
    `GET /console/session`: who the request's token speaks for, as the policy found it
    (user and role, or nulls for no usable token), so the console knows which controls
    to show without trying a change."""
    api = APIRouter(prefix="/console", tags=["console"], dependencies=[Depends(allow)])

    @api.get("", include_in_schema=False, openapi_extra=needs(PUBLIC))
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)

    @api.get("/session", include_in_schema=False, openapi_extra=needs(PUBLIC))
    def session(request: Request) -> JSONResponse:
        principal = getattr(request.state, "principal", None)
        found = {
            "user": getattr(principal, "user", None),
            "role": getattr(principal, "role", None),
        }
        return JSONResponse(found, headers={"Cache-Control": "no-store"})

    @api.get("/{path:path}", include_in_schema=False, openapi_extra=needs(PUBLIC))
    def file(path: str) -> FileResponse:
        target = asset(path)
        return FileResponse(target, media_type=TYPES[target.suffix], headers=HEADERS)

    return api
