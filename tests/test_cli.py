"""The `creditdesk` command: help everywhere, schema, workspaces, API keys and `serve` (without a server)."""

from __future__ import annotations

import re

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from creditdesk import migrate
from creditdesk.cli import app
from creditdesk.config import get_settings
from creditdesk.db import get_database
from creditdesk.parties.models import User, Workspace
from creditdesk.parties.passwords import verify_password

KEY = re.compile(r"cdk_[A-Za-z0-9_-]{20,}")
GOOD_KEY = "k" * 20 + "-a-test-key-of-enough-bytes"


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    """A fresh SQLite file for the CLI (as CREDITDESK_DATABASE_URL), never ./creditdesk.db."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CREDITDESK_DATABASE_URL", url)
    # `serve` refuses the placeholder key outside --demo (issue 10, F4): these tests run as production would.
    monkeypatch.setenv("CREDITDESK_SECRET_KEY", GOOD_KEY)
    monkeypatch.delenv("CREDITDESK_TRUSTED_PROXIES", raising=False)
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal: printed keys and commands must stay whole
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def api(url: str) -> TestClient:
    from creditdesk.api.app import create_app

    return TestClient(create_app(db=get_database(url)))


def all_command_paths() -> list[list[str]]:
    paths = []

    def visit(command: click.Command, path: list[str]) -> None:
        paths.append(path)
        for name, sub in (getattr(command, "commands", None) or {}).items():
            visit(sub, path + [name])

    visit(typer.main.get_command(app), [])
    return paths


def test_every_command_has_help():
    paths = all_command_paths()
    names = {" ".join(p) for p in paths}
    assert {"", "serve", "db", "db upgrade", "db check", "workspace", "workspace create", "apikey",
            "apikey create", "apikey list"} <= names
    for path in paths:
        result = run(*path, "--help")
        assert "Usage:" in result.output, path
        assert len(result.output.strip().splitlines()) > 3, path


def test_no_arguments_shows_help():
    result = CliRunner().invoke(app, [])
    assert "Usage:" in result.output
    assert "serve" in result.output and "workspace" in result.output


def test_db_upgrade_then_workspace_create_prints_a_working_key(cli_db):
    result = run("db", "upgrade")
    assert "revision" in result.output
    result = run("workspace", "create", "Acme Services", "--master-email", "Boss@Example.com")
    keys = KEY.findall(result.output)
    assert len(keys) == 1, result.output
    password = re.search(r"password: (\S+)", result.output).group(1)

    db = get_database(cli_db)
    with db.read() as session:
        ws_id = session.scalar(select(Workspace.id).where(Workspace.name == "Acme Services"))
        master = session.scalar(select(User).where(User.workspace_id == ws_id))
        assert master.role == "master" and master.email == "boss@example.com"
        assert verify_password(master.password_hash, password)
    assert ws_id in result.output

    with api(cli_db) as client:
        r = client.get("/v1/workspace", headers={"Authorization": f"Bearer {keys[0]}"})
        assert r.status_code == 200
        assert r.json()["id"] == ws_id
        r = client.post("/v1/customers", json={"name": "First customer"},
                        headers={"Authorization": f"Bearer {keys[0]}", "Idempotency-Key": "cli-1"})
        assert r.status_code == 201


def test_workspace_create_with_a_given_password_does_not_print_it(cli_db):
    result = run("workspace", "create", "Quiet", "--master-email", "q@example.com", "--password", "s3cret-pass!")
    assert "s3cret-pass!" not in result.output
    with get_database(cli_db).read() as session:
        user = session.scalar(select(User).where(User.email == "q@example.com"))
        assert verify_password(user.password_hash, "s3cret-pass!")


def test_workspace_create_applies_the_schema_on_an_empty_database(cli_db):
    assert migrate.is_empty(get_database(cli_db))
    run("workspace", "create", "Fresh", "--master-email", "f@example.com")
    assert not migrate.is_empty(get_database(cli_db))


def test_apikey_create(cli_db):
    created = run("workspace", "create", "Keys Inc", "--master-email", "k@example.com").output
    ws_id = re.search(r"ws_[0-9a-z]+", created).group(0)
    result = run("apikey", "create", "--workspace", ws_id, "--name", "deploy bot")
    [secret] = KEY.findall(result.output)
    assert secret not in created
    with api(cli_db) as client:
        keys = client.get("/v1/api-keys", headers={"Authorization": f"Bearer {secret}"}).json()["data"]
        assert "deploy bot" in {k["name"] for k in keys}


def test_apikey_list_never_prints_secrets(cli_db):
    import json

    created = run("workspace", "create", "Keys Inc", "--master-email", "k@example.com", "--json").stdout
    ws_id, first = json.loads(created)["workspace_id"], json.loads(created)["api_key"]
    second = json.loads(run("apikey", "create", "--workspace", ws_id, "--name", "deploy bot", "--json").stdout)
    listed = json.loads(run("apikey", "list", "--workspace", ws_id, "--json").stdout)
    assert [k["id"] for k in listed["data"]][-1] == second["api_key_id"] and listed["next_cursor"] is None
    assert "deploy bot" in {k["name"] for k in listed["data"]}
    table = run("apikey", "list", "--workspace", ws_id).output
    assert "deploy bot" in table and first not in table and second["api_key"] not in table
    paged = json.loads(run("apikey", "list", "--workspace", ws_id, "--limit", "1", "--json").stdout)
    assert len(paged["data"]) == 1 and paged["next_cursor"]


def test_apikey_create_for_another_user(cli_db):
    created = run("workspace", "create", "Keys Inc", "--master-email", "k@example.com").output
    first_key = KEY.findall(created)[0]
    ws_id = re.search(r"ws_[0-9a-z]+", created).group(0)
    with api(cli_db) as client:
        user = client.post("/v1/users", json={"name": "Sam", "email": "sam@example.com", "is_staff": True},
                           headers={"Authorization": f"Bearer {first_key}"}).json()["id"]
    result = run("apikey", "create", "--workspace", ws_id, "--user", user)
    [secret] = KEY.findall(result.output)
    with api(cli_db) as client:
        me = client.get(f"/v1/users/{user}", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200
        r = client.post("/v1/customers", json={"name": "x"}, headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 403  # the key acts as Sam, a member


def test_apikey_create_refuses_unknown_workspaces_and_empty_databases(cli_db):
    result = run("apikey", "create", "--workspace", "ws_nothing", ok=False)
    assert result.exit_code != 0
    assert "db upgrade" in result.output
    run("db", "upgrade")
    result = run("apikey", "create", "--workspace", "ws_nothing", ok=False)
    assert result.exit_code != 0
    assert "ws_nothing" in result.output
    assert not KEY.findall(result.output)


@pytest.fixture
def no_server(monkeypatch):
    """`serve` up to the point where it would start uvicorn."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    return calls


def test_serve_on_an_empty_database_says_how_to_create_a_workspace(cli_db, no_server):
    result = run("serve", "--port", "8123")
    assert "No workspace yet" in result.output
    assert "creditdesk workspace create" in result.output
    assert "serve --demo" in result.output
    assert not migrate.is_empty(get_database(cli_db))  # the schema was applied on start
    [(args, kwargs)] = no_server
    assert kwargs["port"] == 8123 and kwargs["host"] == "127.0.0.1"


def test_serve_with_a_workspace_says_nothing_about_creating_one(cli_db, no_server):
    run("workspace", "create", "Existing", "--master-email", "e@example.com")
    result = run("serve")
    assert "No workspace yet" not in result.output
    assert len(no_server) == 1


def test_serve_limits_connections_and_slow_clients(cli_db, no_server, monkeypatch):
    """F18: uvicorn's keep-alive timeout, concurrency limit and header cap are set, from the settings."""
    run("serve")
    [(_args, kwargs)] = no_server
    assert kwargs["timeout_keep_alive"] == 5
    assert kwargs["limit_concurrency"] == 1000
    assert kwargs["h11_max_incomplete_event_size"] == 16 * 1024
    assert kwargs["http"] == "auto" and kwargs["server_header"] is False
    monkeypatch.setenv("CREDITDESK_LIMIT_CONCURRENCY", "0")
    monkeypatch.setenv("CREDITDESK_KEEP_ALIVE_TIMEOUT_SECONDS", "3")
    get_settings.cache_clear()
    run("serve", "--http", "h11", "--workers", "2")
    _args, kwargs = no_server[-1]
    assert kwargs["limit_concurrency"] is None  # 0: no limit
    assert kwargs["timeout_keep_alive"] == 3 and kwargs["http"] == "h11"
    assert run("serve", "--http", "nonsense", ok=False).exit_code != 0


def test_serve_runs_the_app_on_the_chosen_database(tmp_path, monkeypatch, no_server):
    """Whatever the settings cached earlier, the server serves the database `serve` was given."""
    monkeypatch.delenv("CREDITDESK_DATABASE_URL", raising=False)
    monkeypatch.setenv("CREDITDESK_SECRET_KEY", GOOD_KEY)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    get_settings()  # something already read (and cached) the default settings
    url = f"sqlite:///{tmp_path / 'chosen.db'}"
    try:
        run("serve", "--database-url", url)
        [(args, kwargs)] = no_server
        served = args[0] if args else kwargs["app"]
        if isinstance(served, str):  # an import string: the app finds its database through the settings
            get_settings.cache_clear()
            assert get_settings().database_url == url
        else:
            assert served.state.db.url == url

        run("serve", "--database-url", url, "--workers", "2")
        args, kwargs = no_server[-1]
        assert kwargs["workers"] == 2
        # Worker processes build their own app: they must find the database in the environment.
        import os

        assert os.environ["CREDITDESK_DATABASE_URL"] == url
    finally:
        monkeypatch.delenv("CREDITDESK_DATABASE_URL", raising=False)
        get_settings.cache_clear()
    assert not (tmp_path / "creditdesk.db").exists()


def test_serve_demo_creates_the_demo_and_prints_a_login_and_a_working_key(cli_db, no_server):
    result = run("serve", "--demo", "--host", "127.0.0.1", "--port", "8765")
    output = result.output
    keys = set(KEY.findall(output))
    assert len(keys) == 1, output
    key = keys.pop()
    assert "master@demo.example.com" in output
    assert "demo-password" in output
    assert f"curl -H 'Authorization: Bearer {key}' http://127.0.0.1:8765/v1/offices" in output
    assert len(no_server) == 1

    with api(cli_db) as client:
        r = client.get("/v1/offices", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        names = {o["name"] for o in r.json()["data"]}
        assert {"Head Office", "North Branch", "Acme London", "Globex HQ"} <= names
        customers = client.get("/v1/customers", headers={"Authorization": f"Bearer {key}"}).json()["data"]
        assert {"Acme Widgets", "Globex Corporation", "Initech"} <= {c["name"] for c in customers}
        users = client.get("/v1/users", headers={"Authorization": f"Bearer {key}"}).json()["data"]
        assert {"manager", "member", "master"} <= {u["role"] for u in users}
        assert client.get("/v1/teams", headers={"Authorization": f"Bearer {key}"}).json()["data"]

    with get_database(cli_db).read() as session:
        master = session.scalar(select(User).where(User.email == "master@demo.example.com"))
        assert verify_password(master.password_hash, "demo-password")


def test_serve_demo_twice_keeps_one_demo_workspace_and_prints_a_new_key(cli_db, no_server):
    first = KEY.findall(run("serve", "--demo").output)
    second = KEY.findall(run("serve", "--demo").output)
    assert first and second and set(first) != set(second)
    with get_database(cli_db).read() as session:
        assert len(session.scalars(select(Workspace.id)).all()) == 1
    with api(cli_db) as client:
        for key in first + second:
            assert client.get("/v1/offices", headers={"Authorization": f"Bearer {key}"}).status_code == 200


@pytest.mark.parametrize("name,email", [("Acme", "not-an-email"), ("Acme", ""), ("   ", "ok@example.com")])
def test_workspace_create_refuses_bad_names_and_emails(cli_db, name, email):
    result = run("workspace", "create", name, "--master-email", email, ok=False)
    assert result.exit_code == 1
    assert "error" in result.output
    assert not KEY.findall(result.output)
    with get_database(cli_db).read() as session:
        assert session.scalars(select(Workspace.id)).all() == []


# --- the session key and the proxy headers (issue 10, F4 and F12) ---------------------------------------------

@pytest.mark.parametrize("key", [None, "change-me-in-production", "too-short-31-bytes-xxxxxxxxxxxx"])
def test_serve_refuses_the_placeholder_or_a_short_secret_key(cli_db, no_server, monkeypatch, key):
    if key is None:
        monkeypatch.delenv("CREDITDESK_SECRET_KEY")
    else:
        monkeypatch.setenv("CREDITDESK_SECRET_KEY", key)
    get_settings.cache_clear()
    result = run("serve", ok=False)
    assert result.exit_code == 1
    assert "CREDITDESK_SECRET_KEY" in result.output
    assert "secrets.token_urlsafe(48)" in result.output
    assert no_server == []


def test_session_secret_for_serve_is_the_check_serve_runs(cli_db, monkeypatch):
    from creditdesk.cli.serve import session_secret_for_serve

    assert session_secret_for_serve(demo=False, database_url=cli_db) == GOOD_KEY
    monkeypatch.setenv("CREDITDESK_SECRET_KEY", "change-me-in-production")
    get_settings.cache_clear()
    with pytest.raises(typer.Exit) as info:
        session_secret_for_serve(demo=False, database_url=cli_db)
    assert info.value.exit_code == 1


def test_serve_demo_makes_a_secret_key_once_and_keeps_it(cli_db, tmp_path, no_server, monkeypatch):
    import os
    import stat

    monkeypatch.delenv("CREDITDESK_SECRET_KEY")  # restored (to the test key) when the test ends
    get_settings.cache_clear()
    run("serve", "--demo")
    secret_file = tmp_path / ".creditdesk-secret"
    key = secret_file.read_text().strip()
    assert len(key) >= 48 and key != "change-me-in-production"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert get_settings().secret_key == key == os.environ["CREDITDESK_SECRET_KEY"]

    monkeypatch.delenv("CREDITDESK_SECRET_KEY")
    get_settings.cache_clear()
    run("serve", "--demo")  # a restart signs with the same key: demo sessions survive it
    assert get_settings().secret_key == key
    assert len(no_server) == 2


def test_serve_demo_uses_a_key_that_is_set(cli_db, tmp_path, no_server):
    run("serve", "--demo")
    assert get_settings().secret_key == GOOD_KEY
    assert not (tmp_path / ".creditdesk-secret").exists()


def test_the_server_app_factory_refuses_the_placeholder_key(monkeypatch):
    from creditdesk.api.app import create_server_app

    monkeypatch.setenv("CREDITDESK_SECRET_KEY", "change-me-in-production")
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="CREDITDESK_SECRET_KEY"):
            create_server_app()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_serve_believes_forwarded_headers_only_from_named_proxies(cli_db, no_server, monkeypatch):
    run("serve")
    [(args, kwargs)] = no_server
    # uvicorn's own default would believe X-Forwarded-For from 127.0.0.1.
    assert kwargs["proxy_headers"] is False

    monkeypatch.setenv("CREDITDESK_TRUSTED_PROXIES", "10.0.0.5, 10.1.0.0/16")
    get_settings.cache_clear()
    run("serve", "--workers", "2")
    args, kwargs = no_server[-1]
    assert kwargs["proxy_headers"] is True and kwargs["forwarded_allow_ips"] == "10.0.0.5, 10.1.0.0/16"


def test_the_cli_modules_import_nothing_in_a_circle():
    """Issue 11: cli.py and cli_credits.py imported each other. The package's modules import `common` and
    the domain, never the package that puts them together (only `python -m creditdesk.cli` does)."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import creditdesk
    import creditdesk.cli

    package = Path(creditdesk.cli.__file__).parent
    modules = sorted(p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert {"common", "serve", "db", "workspace", "credits"} <= set(modules)
    for name in modules:
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "creditdesk.cli":
                raise AssertionError(f"cli/{name}.py imports from the creditdesk.cli package")
            if isinstance(node, ast.ImportFrom) and node.module == "creditdesk":
                assert "cli" not in {a.name for a in node.names}, name
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("creditdesk.cli."):
                assert node.module == "creditdesk.cli.common", (name, node.module)
    # Each module imports first in a fresh interpreter (no half-initialised module met on the way).
    for name in modules:
        subprocess.run([sys.executable, "-c", f"import creditdesk.cli.{name}"], check=True)
    assert not any(Path(creditdesk.__file__).parent.joinpath(old).exists() for old in ("cli.py", "cli_credits.py"))


def test_json_output_for_scripts(cli_db):
    import json

    made = json.loads(run("workspace", "create", "Scripted", "--master-email", "s@example.com", "--json").stdout)
    assert made["workspace_id"].startswith("ws_") and KEY.fullmatch(made["api_key"])
    assert made["password"]  # generated, so printed once
    key = json.loads(run("apikey", "create", "--workspace", made["workspace_id"], "--json").stdout)
    assert key["workspace_id"] == made["workspace_id"] and KEY.fullmatch(key["api_key"])
    assert key["api_key"] != made["api_key"]
    listed = json.loads(run("workspace", "list", "--json").stdout)
    assert [(w["id"], w["name"], w["users"]) for w in listed] == [(made["workspace_id"], "Scripted", 1)]
    packs = json.loads(run("packs", "list", "--workspace", made["workspace_id"], "--json").stdout)
    assert packs == {"object": "list", "data": [], "next_cursor": None}


def test_packs_import_template_and_dry_run_write_nothing(cli_db, tmp_path):
    """Issue 17: the CLI offers what the back office does: a template with a sample row for this workspace, and a
    dry run that says what the file would grant and refuse and writes nothing; then the import itself."""
    from creditdesk.credits.models import Pack

    run("db", "upgrade")
    created = run("workspace", "create", "Import Co", "--master-email", "boss@example.com")
    key = KEY.findall(created.output)[0]
    db = get_database(cli_db)
    with db.read() as session:
        ws_id = session.scalar(select(Workspace.id).where(Workspace.name == "Import Co"))
    with api(cli_db) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert client.post("/v1/credit-types", json={"code": "hours", "name": "Hours", "scale": 2},
                           headers={**headers, "Idempotency-Key": "ct"}).status_code == 201
        assert client.post("/v1/offices", json={"name": "Sydney office"},
                           headers={**headers, "Idempotency-Key": "off"}).status_code == 201
    template = run("packs", "import", "--template", "--workspace", ws_id).output
    header, sample = template.splitlines()[:2]
    assert header.split(",")[:3] == ["holder", "credit_type", "quantity"]
    assert sample.startswith("Sydney office,hours,")
    path = tmp_path / "packs.csv"
    path.write_text(template + "Nobody,hours,5,Lost pack,,,,,\n")

    dry = run("packs", "import", str(path), "--dry-run", "--workspace", ws_id, ok=False)
    assert dry.exit_code == 1  # a refused line
    assert "1 pack(s) would be granted" in dry.output and "1 error(s)" in dry.output
    assert "line 3" in dry.output and "Nobody" in dry.output
    with db.read() as session:
        assert session.scalar(select(Pack.id).where(Pack.workspace_id == ws_id)) is None

    real = run("packs", "import", str(path), "--workspace", ws_id, ok=False)
    assert "1 pack(s) granted" in real.output
    with db.read() as session:
        packs = session.scalars(select(Pack).where(Pack.workspace_id == ws_id)).all()
        assert [(p.holder_kind, p.quantity) for p in packs] == [("office", 1000)]
