"""Signing test payloads as HubSpot does (v3), with the official helper, and one HMAC made by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from hubspot.utils.signature import Signature

SECRET = "test-client-secret-1234"
BASE = "http://testserver"


def now_ms() -> str:
    return str(int(time.time() * 1000))


def webhook_url(workspace_id: str, base: str = BASE) -> str:
    return f"{base}/v1/integrations/hubspot/webhook?workspace={workspace_id}"


def signed(body: bytes, url: str, *, secret: str = SECRET, timestamp: str | None = None) -> dict:
    """The headers HubSpot would send with `body` posted to `url`."""
    ts = timestamp or now_ms()
    sig = Signature.get_signature(secret, body.decode(), "v3", http_uri=url, http_method="POST", timestamp=ts)
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts, "Content-Type": "application/json"}


def hand_signed(body: bytes, url: str, *, secret: str = SECRET, timestamp: str | None = None) -> dict:
    """The same, computed here from HubSpot's description: base64(HMAC-SHA256(secret, method+URI+body+ts))."""
    ts = timestamp or now_ms()
    mac = hmac.new(secret.encode(), b"POST" + url.encode() + body + ts.encode(), hashlib.sha256).digest()
    return {"X-HubSpot-Signature-v3": base64.b64encode(mac).decode(), "X-HubSpot-Request-Timestamp": ts,
            "Content-Type": "application/json"}


def deal_event(deal_id: int | str, *, event_id: int | str, company: str | None = "5551",
               lines: list[dict] | None = None, stage: str = "closedwon", amount: str | None = "1200.00",
               currency: str = "GBP", closedate: str = "2027-01-15T10:00:00Z", properties: dict | None = None,
               details: bool = True) -> dict:
    event = {"eventId": event_id, "subscriptionId": 7, "portalId": 62515, "occurredAt": int(time.time() * 1000),
             "subscriptionType": "deal.propertyChange", "objectId": deal_id, "propertyName": "dealstage",
             "propertyValue": stage, "changeSource": "CRM"}
    if details:
        event["deal"] = {"dealname": f"Deal {deal_id}", "dealstage": stage, "amount": amount,
                         "deal_currency_code": currency, "closedate": closedate, "companyId": company,
                         "properties": properties or {},
                         "lineItems": lines if lines is not None else [
                             {"id": f"li-{deal_id}", "productId": "1234", "sku": "HRS-10", "quantity": "1"}]}
    return event


def body_of(*events: dict) -> bytes:
    return json.dumps(list(events)).encode()
