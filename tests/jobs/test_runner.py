"""The background jobs as `serve` runs them: one pass does hold timeouts, expiry, the purge of expired
idempotency keys and (SQLite) planner statistics, and a second pass finds nothing left to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from creditdesk import idempotency
from creditdesk.config import get_settings
from creditdesk.idempotency import IdempotencyKey
from creditdesk.jobs import runner
from tests.credits.helpers import grant, make_shop

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_run_all_expires_and_refreshes_statistics(db, frozen_clock):
    shop = make_shop(db)
    grant(db, shop.actor, "office", shop.berlin, 10, expires_at=T0 + timedelta(minutes=1))
    frozen_clock.advance(minutes=5)
    first = runner.run_all(db)
    assert first["packs_expired"] >= 1
    assert runner.run_all(db)["packs_expired"] == 0
    if db.is_sqlite:
        with db.read() as s:
            # PRAGMA optimize has analysed the tables it found worth analysing.
            assert s.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar() == 1


def _stored_keys(db, workspace_id: str) -> list[str]:
    with db.read() as s:
        return sorted(s.scalars(select(IdempotencyKey.key).where(IdempotencyKey.workspace_id == workspace_id)))


def _remember(db, workspace_id: str, caller: str, key: str) -> None:
    claim = idempotency.claim(db, workspace_id=workspace_id, caller=caller, key=key, fingerprint="f" * 64,
                              method="POST", path="/v1/customers")
    db.write(lambda s: idempotency.complete(s, claim, status=201, body="{}"))


def test_run_all_forgets_idempotency_keys_past_retention(db, workspace, frozen_clock):
    """F17: purge_expired had no caller; keys and stored answers were kept forever."""
    retention = get_settings().idempotency_retention_hours
    for n in range(5):
        _remember(db, workspace.id, workspace.master_id, f"old-{n}")
    frozen_clock.advance(hours=retention - 1)
    _remember(db, workspace.id, workspace.master_id, "recent")
    assert runner.run_all(db)["idempotency_keys_purged"] >= 0
    assert len(_stored_keys(db, workspace.id)) == 6  # nothing is due yet

    frozen_clock.advance(hours=2)  # the five "old" keys are past retention, "recent" is not
    result = runner.run_all(db)
    assert result["idempotency_keys_purged"] >= 5
    assert _stored_keys(db, workspace.id) == ["recent"]
    assert runner.run_all(db)["idempotency_keys_purged"] == 0


def test_the_purge_goes_in_batches_until_none_is_left(db, workspace, frozen_clock, monkeypatch):
    for n in range(7):
        _remember(db, workspace.id, workspace.master_id, f"k-{n}")
    frozen_clock.advance(hours=get_settings().idempotency_retention_hours + 1)
    sizes = []
    purge = idempotency.purge_expired

    def counted(session, **kw):
        done = purge(session, **kw)
        sizes.append(done)
        return done

    monkeypatch.setattr(idempotency, "purge_expired", counted)
    assert runner.purge_idempotency_keys(db, batch_size=3) >= 7
    assert all(size <= 3 for size in sizes) and sizes[-1] < 3 and len(sizes) >= 3
    assert _stored_keys(db, workspace.id) == []
