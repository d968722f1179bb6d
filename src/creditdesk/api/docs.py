"""API documentation pages (/docs: Swagger UI, /redoc: ReDoc) served entirely from this app.

FastAPI's own pages load their scripts from a CDN (blank without internet, and third-party code on the
back office's origin) and start them with an inline script, which the Content-Security-Policy forbids.
Here the bundles come from the installed `fastapi-offline` package and our own small init scripts, all
under /docs/assets.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from creditdesk.api.security import CONTENT_SECURITY_POLICY

ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(__file__).parent / "docs_assets"

# Swagger UI runs under the app's own policy. ReDoc styles itself through styled-components, which
# writes <style> elements at run time: under `style-src 'self'` it stops with "Something went wrong".
# Its page alone allows inline style; scripts stay 'self' only, and the page shows nothing stored by
# users (only the OpenAPI document), so inline style cannot be turned against a user there. Its search
# runs in a worker it builds from a blob: URL (a worker needs script already running, which stays 'self').
# Its "API docs by Redocly" logo is an image on a CDN: img-src blocks it and ReDoc hides it.
REDOC_CSP = (CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
             + "; worker-src 'self' blob:")


def _page(title: str, head: str, body: str, *, csp: str | None = None) -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="{ASSETS_URL}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>
"""
    headers = {"Cache-Control": "no-cache"}
    if csp:
        headers["Content-Security-Policy"] = csp  # SecurityHeaders keeps a policy the page set itself
    return HTMLResponse(html, headers=headers)


def install(app: FastAPI, *, openapi_url: str) -> None:
    """Mount the assets and add /docs and /redoc (the app is created with docs_url=redoc_url=None)."""
    title = f"{app.title} API"
    spec = escape(openapi_url, quote=True)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _page(title, f'<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">',
                     f'<div id="swagger-ui" data-openapi-url="{spec}"></div>\n'
                     f'<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>\n'
                     f'<script src="{ASSETS_URL}/swagger-init.js"></script>')

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _page(f"{title} (ReDoc)", "",
                     f'<div id="redoc" data-openapi-url="{spec}"></div>\n'
                     f'<script src="{ASSETS_URL}/redoc.standalone.js"></script>\n'
                     f'<script src="{ASSETS_URL}/redoc-init.js"></script>', csp=REDOC_CSP)

    # Our init scripts first, then the bundles and their CSS as the package installed them.
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR), packages=[("fastapi_offline", "static")]),
              name="docs-assets")
