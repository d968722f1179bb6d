"""The bulk expiry sweep writes, per pack, what pack-by-pack expiry wrote: status, one breakage transfer
of the available credits, one audit event; held credits stay held; a re-run does nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from creditdesk.audit import AuditEvent
from creditdesk.credits import expiry
from creditdesk.credits.models import CreditType, Pack
from creditdesk.jobs import runner
from creditdesk.ledger import service as ledger
from creditdesk.ledger.models import LedgerAccount, LedgerTransfer
from tests.credits.helpers import consume, grant, hold, make_shop

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_bulk_expiry_records_match_the_pack_by_pack_ones(db, frozen_clock):
    shop = make_shop(db)
    a = shop.actor
    full = grant(db, a, "office", shop.berlin, 100, expires_at=T0 + timedelta(hours=1))
    held = grant(db, a, "office", shop.paris, 50, expires_at=T0 + timedelta(hours=1))
    empty = grant(db, a, "user", shop.clara, 5, expires_at=T0 + timedelta(hours=1))
    later = grant(db, a, "office", shop.berlin, 7, expires_at=T0 + timedelta(days=30))
    hold(db, a, "office", shop.paris, 20, timeout_seconds=4 * 3600)
    consume(db, a, "user", shop.clara, 5)  # depleted: not active any more, so not expired
    consume(db, a, "office", shop.berlin, 30)
    frozen_clock.advance(hours=2)
    assert runner.expire_due_packs(db, batch_size=2, workspace_id=shop.ws) == 2
    assert runner.expire_due_packs(db, workspace_id=shop.ws) == 0
    with db.read() as s:
        ct = s.scalar(select(CreditType).where(CreditType.workspace_id == shop.ws, CreditType.code == "credits"))
        packs = {p.id: p for p in s.scalars(select(Pack).where(Pack.id.in_([full, held, empty, later])))}
        assert {k: p.status for k, p in packs.items()} == {full: "expired", held: "expired", empty: "depleted",
                                                           later: "active"}
        assert packs[full].updated_at == frozen_clock.now()
        for pack_id, breakage, still_held in ((full, 70, 0), (held, 30, 20)):
            pack = packs[pack_id]
            account = s.get(LedgerAccount, pack.ledger_account_id)
            assert (account.available, account.debits_pending) == (0, still_held)
            t = s.scalar(select(LedgerTransfer).where(LedgerTransfer.debit_account_id == account.id,
                                                      LedgerTransfer.code == "expire"))
            assert (t.credit_account_id, t.amount, t.phase, t.reference_kind, t.reference_id, t.actor_id,
                    t.operation_id, t.unit, t.created_at) == (ct.breakage_account_id, breakage, "posted", "pack",
                                                              pack_id, None, None, "credits", frozen_clock.now())
            e = s.scalar(select(AuditEvent).where(AuditEvent.object_id == pack_id,
                                                  AuditEvent.action == "pack.expire"))
            assert (e.actor_kind, e.actor_id, e.object_type, e.before, e.after) == (
                "system", None, "pack", {"status": "active"},
                {"status": "expired", "breakage": breakage, "held": still_held})
        report = ledger.verify(s, workspace_id=shop.ws)
        assert report.ok, report.problems


def test_expiry_in_a_session_that_holds_the_pack_sees_the_change(db, frozen_clock):
    shop = make_shop(db)
    p = grant(db, shop.actor, "office", shop.berlin, 10, expires_at=T0 + timedelta(minutes=5))
    frozen_clock.advance(minutes=10)

    def fn(s):
        pack = s.get(Pack, p)
        account = s.get(LedgerAccount, pack.ledger_account_id)
        assert pack.status == "active" and account.available == 10
        assert expiry.expire_packs(s, [p, p]) == 1
        return pack.status, account.available
    assert db.write(fn) == ("expired", 0)
    assert db.write(lambda s: expiry.expire_packs(s, [p])) == 0
