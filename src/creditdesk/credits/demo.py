"""Credit demo data: credit types, packs on offices and contacts, projects and some consumption."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from creditdesk import clock
from creditdesk.audit import Actor
from creditdesk.credits import schemas as s
from creditdesk.credits import consumptions, credit_types, expiry, packs, projects


def create_credit_demo(session: Session, *, actor: Actor, customers: dict, staff: dict) -> None:
    for code, name, scale, perm in [("hours", "Work hours", 2, None), ("sms", "SMS messages", 0, "send_sms"),
                                    ("credits", "Credits", 0, None)]:
        credit_types.create_credit_type(session, s.CreditTypeCreate(code=code, name=name, scale=scale,
                                                                    required_permission=perm), actor=actor)
    now = clock.now()
    acme, (acme_london, acme_leeds), (wendy, liam) = customers["Acme Widgets"]
    globex, (globex_hq,), (hank,) = customers["Globex Corporation"]
    initech, (initech_austin,), (peter,) = customers["Initech"]
    manager = staff["manager"]

    def grant(holder_kind, holder_id, qty, name, *, ct="hours", days=365, price=0, label="", notes="",
              priority=100, products=(), start_days=0, source="manual", ref=None):
        return packs.grant_pack(session, s.PackCreate(
            holder=s.Holder(kind=holder_kind, id=holder_id), credit_type=ct, quantity=qty, name=name,
            price_paid=price, currency="GBP" if price else None, source=source, external_ref=ref,
            relationship_manager_id=manager.id, purchased_at=now - timedelta(days=max(0, -start_days)),
            starts_at=now + timedelta(days=start_days) if start_days > 0 else None,
            expires_at=now + timedelta(days=days), priority=priority, product_codes=list(products),
            status_label=label, notes=notes), actor=actor)

    london_pack = grant("office", acme_london.id, 4000, "Acme 40h content pack", price=240000, label="Renewal due",
                        notes="Customer asked for a quote on 80h.", source="crm_deal", ref="deal-1042")
    grant("user", wendy.id, 1000, "Wendy's translation hours", price=60000, products=["translation"], days=90)
    grant("office", acme_leeds.id, 2000, "Leeds starter pack", days=20, label="Expiring soon")
    grant("office", globex_hq.id, 10000, "Globex annual retainer", price=500000, days=300, source="crm_deal",
          ref="deal-1077")
    grant("user", hank.id, 500, "Hank bonus hours", days=60, source="promotion", priority=50)
    grant("office", initech_austin.id, 1500, "Initech Q3 pack", start_days=14, label="Starts next fortnight")
    grant("user", peter.id, 800, "Peter's old pack", days=2)

    project = projects.create_project(session, s.ProjectCreate(name="Acme website refresh", office_id=acme_london.id,
                                                               contact_ids=[wendy.id]), actor=actor)
    projects.create_project(session, s.ProjectCreate(name="Globex launch video", office_id=globex_hq.id,
                                                     contact_ids=[hank.id]), actor=actor)
    consumptions.consume(session, s.ConsumeRequest(context=s.Context(kind="project", id=project.id),
                                                   credit_type="hours", amount=1250, product_code="copywriting",
                                                   reference=s.ReferenceIn(kind="project", id=project.id)), actor=actor)
    del london_pack

    # SMS: a workspace pool, and staff credits.
    grant("workspace", None, 5000, "SMS pool", ct="sms", days=365, price=25000)
    for key in ("alice", "bob"):
        grant("user", staff[key].id, 200, f"SMS for {staff[key].name}", ct="sms", days=365)

    # History for the back office's Credit information tab: a pack used up on a project, and one expired.
    leeds_project = projects.create_project(session, s.ProjectCreate(
        name="Acme Leeds intranet", office_id=acme_leeds.id, contact_ids=[liam.id]), actor=actor)
    grant("user", liam.id, 300, "Liam's pilot hours", priority=10, label="Used up")
    consumptions.consume(session, s.ConsumeRequest(context=s.Context(kind="project", id=leeds_project.id),
                                                   credit_type="hours", amount=300,
                                                   reference=s.ReferenceIn(kind="project", id=leeds_project.id)),
                         actor=actor)
    old = packs.grant_pack(session, s.PackCreate(
        holder=s.Holder(kind="office", id=acme_london.id), credit_type="hours", quantity=2000,
        name="Acme 2025 hours", relationship_manager_id=manager.id, purchased_at=now - timedelta(days=400),
        expires_at=now - timedelta(days=35), status_label="Lapsed"), actor=actor)
    expiry.expire_packs(session, [old.id])
