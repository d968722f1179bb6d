"""/docs (Swagger UI) and /redoc come from this app alone: no CDN, no inline script (F13).

On main, /docs loaded swagger-ui-bundle.js from cdn.jsdelivr.net (a blank page without internet, and a
third party's script on the back office's origin) and started it with an inline script.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest


class Resources(HTMLParser):
    """Every URL a page loads or links to, and the bodies of its inline scripts."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name in ("src", "href", "action", "data", "poster"):
            if values.get(name):
                self.urls.append(values[name])
        for name, value in attrs:
            assert not name.startswith("on"), f"inline handler {name} on <{tag}>"
        self._in_inline_script = tag == "script" and not values.get("src")
        if self._in_inline_script:
            self.inline_scripts.append("")

    def handle_data(self, data):
        if self._in_inline_script:
            self.inline_scripts[-1] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False


def resources_of(html: str) -> Resources:
    parser = Resources()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host_and_no_inline_script(client, page):
    answer = client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    found = resources_of(answer.text)
    assert found.urls, "the page loads its bundle"
    for url in found.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        assert url.startswith("/"), url
    assert not [body for body in found.inline_scripts if body.strip()], "inline script: the CSP would block it"
    for url in found.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    scripts = [u for u in found.urls if u.endswith(".js")]
    assert len(scripts) == 2, scripts  # the installed bundle and our init script


def test_docs_assets_are_the_installed_bundles_with_their_types(client):
    for name, kind, marker in (("swagger-ui-bundle.js", "javascript", b"SwaggerUIBundle"),
                               ("swagger-ui.css", "text/css", b".swagger-ui"),
                               ("redoc.standalone.js", "javascript", b"Redoc"),
                               ("swagger-init.js", "javascript", b"data-openapi-url"),
                               ("redoc-init.js", "javascript", b"data-openapi-url")):
        answer = client.get(f"/docs/assets/{name}")
        assert answer.status_code == 200, name
        assert kind in answer.headers["content-type"], name
        assert marker in answer.content, name


def test_swagger_ui_is_pointed_at_the_openapi_document(client):
    html = client.get("/docs").text
    assert 'data-openapi-url="/openapi.json"' in html
    assert client.get("/openapi.json").status_code == 200


def test_swagger_ui_runs_under_the_apps_own_policy_and_redoc_relaxes_style_only(client):
    from creditdesk.api.security import CONTENT_SECURITY_POLICY

    assert client.get("/docs").headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    redoc = client.get("/redoc").headers["content-security-policy"]
    assert "script-src 'self';" in redoc and "'unsafe-eval'" not in redoc
    assert redoc.count("'unsafe-inline'") == 1 and "style-src 'self' 'unsafe-inline'" in redoc
