"""CSV import of packs: streamed (memory flat in file size), per-row errors with line numbers,
valid rows committed, and re-running the same file grants nothing twice."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from creditdesk.audit import Actor
from creditdesk.credits import schemas
from creditdesk.credits import service as credits
from creditdesk.credits.models import Pack
from creditdesk.errors import CreditdeskError

COLUMNS = ["holder_kind", "holder_id", "credit_type", "quantity", "name", "price_paid", "currency", "is_paid",
           "source", "external_ref", "relationship_manager_id", "project_manager_id", "purchased_at", "starts_at",
           "expires_at", "expiry_months", "priority", "product_codes", "status_label", "notes", "idempotency_key"]
REQUIRED = {"holder_kind", "credit_type", "quantity", "name"}


@dataclass
class ImportReport:
    granted: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Row:
    line: int
    data: schemas.PackCreate | None
    error: str | None = None


def _row_to_pack(row: dict, key: str) -> schemas.PackCreate:
    def val(name):
        v = (row.get(name) or "").strip()
        return v or None

    payload = {
        "holder": {"kind": val("holder_kind"), "id": val("holder_id")},
        "credit_type": val("credit_type"), "quantity": val("quantity"), "name": val("name"),
        "idempotency_key": val("idempotency_key") or key,
    }
    for name in ("price_paid", "currency", "source", "external_ref", "relationship_manager_id",
                 "project_manager_id", "purchased_at", "starts_at", "expires_at", "expiry_months", "priority",
                 "status_label", "notes"):
        if val(name) is not None:
            payload[name] = val(name)
    if val("is_paid") is not None:
        payload["is_paid"] = val("is_paid").lower() in ("1", "true", "yes", "paid")
    if val("product_codes"):
        payload["product_codes"] = [c for c in val("product_codes").replace(";", " ").split() if c]
    return schemas.PackCreate.model_validate(payload)


def read_rows(stream: io.TextIOBase, *, source_name: str = "") -> Iterator[Row]:
    """Parse a CSV stream one row at a time. Each row gets a stable idempotency key derived from its
    content and how many identical rows came before it, so a re-run maps onto the same packs."""
    reader = csv.DictReader(stream)
    header = set(reader.fieldnames or [])
    missing = REQUIRED - header
    if missing:
        yield Row(1, None, f"missing column(s): {', '.join(sorted(missing))}")
        return
    unknown = header - set(COLUMNS)
    if unknown:
        yield Row(1, None, f"unknown column(s): {', '.join(sorted(unknown))}")
        return
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        canonical = "\x1f".join((row.get(c) or "").strip() for c in COLUMNS)
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:40]
        seen[digest] = seen.get(digest, 0) + 1
        key = f"import:{digest}:{seen[digest]}"
        try:
            yield Row(line, _row_to_pack(row, key))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            yield Row(line, None, f"{where}: {first.get('msg')}")


def import_batch(session: Session, rows: list[Row], *, actor: Actor, report: ImportReport) -> None:
    """Grant a batch of parsed rows; a bad row is rolled back alone (SAVEPOINT) and reported."""
    credits.require_grant(actor)
    keys = [r.data.idempotency_key for r in rows if r.data is not None]
    existing = set(session.scalars(select(Pack.idempotency_key).where(
        Pack.workspace_id == actor.workspace_id, Pack.idempotency_key.in_(keys)))) if keys else set()
    for row in rows:
        if row.data is None:
            report.errors.append((row.line, row.error or "invalid row"))
            continue
        if row.data.idempotency_key in existing:
            report.skipped += 1
            continue
        savepoint = session.begin_nested()
        try:
            credits.grant_pack(session, row.data, actor=actor)
            savepoint.commit()
            existing.add(row.data.idempotency_key)
            report.granted += 1
        except CreditdeskError as exc:
            savepoint.rollback()
            report.errors.append((row.line, f"{exc.message} ({exc.code})"))
