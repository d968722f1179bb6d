"""A mistyped back-office address in a browser gets an HTML page with the way back; the API's clients (and
anything that does not ask for HTML) keep getting problem+json."""

from __future__ import annotations


def test_a_browser_gets_a_page_for_an_unknown_address(web):
    page = web.get("/credits/no-such-screen", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text and "<html" in page.text


def test_api_clients_keep_problem_json(web):
    for path, accept in (("/v1/no-such-thing", "text/html"), ("/no-such-screen", "application/json"),
                         ("/no-such-screen", "*/*")):
        answer = web.get(path, headers={"Accept": accept})
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/problem+json"), (path, accept)
        assert answer.json()["code"] == "not_found"


def test_a_forms_step_opened_in_a_browser_gets_a_page(web, world):
    from tests.web.conftest import logged_in

    client = logged_in(web, world.master_email)
    page = client.get(f"/packs/{world.london_pack}/void", headers={"Accept": "text/html"})
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert "step of a form" in page.text and "Nothing was done" in page.text
