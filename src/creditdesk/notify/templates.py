"""Expiry email templates: Jinja2 in a sandbox (workspace masters write them; they must not reach
Python internals), the shipped defaults, and which template a pack's email uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from creditdesk import timezones
from creditdesk.errors import InvalidInput

MAX_REPEAT = 10_000
MAX_RANGE = 1_000


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox (no attribute of Python internals, no mutation of the context), and no
    cheap way to burn the server's memory or time: `"x" * 10**9`, `9 ** 9 ** 9`, nested huge ranges and
    lipsum are refused or bounded. The templates only need the few variables they are given."""

    intercepted_binops = frozenset(["*", "**"])

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("lipsum", "cycler", "joiner", "namespace", "dict"):
            self.globals.pop(name, None)
        self.globals["range"] = _bounded_range

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 100:
                raise SecurityError("exponent too large")
            return left ** right
        for count, other in ((left, right), (right, left)):
            if isinstance(count, int) and isinstance(other, (str, list, tuple)) and count * max(1, len(other)) > MAX_REPEAT:
                raise SecurityError("repetition too large")
        return left * right


def _bounded_range(*args):
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise SecurityError(f"range longer than {MAX_RANGE}")
    return values


# Autoescaping on for the HTML body only: the subject and text body are not HTML.
_html_env = TemplateSandbox(autoescape=True, undefined=StrictUndefined)
_text_env = TemplateSandbox(autoescape=False, undefined=StrictUndefined)

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class TemplateText:
    subject: str
    text_body: str
    html_body: str | None


DEFAULTS: dict[str, TemplateText] = {
    "warning": TemplateText(
        subject="Your {{ pack.name }} expires on {{ pack.expires_on }}",
        text_body=("Hello {{ customer.name }},\n\n"
                   "your package \"{{ pack.name }}\" expires on {{ pack.expires_on }} "
                   "(in {{ days_left }} day{{ '' if days_left == 1 else 's' }}). "
                   "{{ pack.remaining }} of {{ pack.quantity }} credits are left: use them before then.\n\n"
                   "{{ workspace.name }}\n"),
        html_body=("<p>Hello {{ customer.name }},</p>"
                   "<p>your package <strong>{{ pack.name }}</strong> expires on {{ pack.expires_on }} "
                   "(in {{ days_left }} day{{ '' if days_left == 1 else 's' }}). "
                   "{{ pack.remaining }} of {{ pack.quantity }} credits are left: use them before then.</p>"
                   "<p>{{ workspace.name }}</p>")),
    "expired": TemplateText(
        subject="Your {{ pack.name }} has expired",
        text_body=("Hello {{ customer.name }},\n\n"
                   "your package \"{{ pack.name }}\" expired on {{ pack.expires_on }}. "
                   "Ask us about a new one.\n\n{{ workspace.name }}\n"),
        html_body=("<p>Hello {{ customer.name }},</p>"
                   "<p>your package <strong>{{ pack.name }}</strong> expired on {{ pack.expires_on }}. "
                   "Ask us about a new one.</p><p>{{ workspace.name }}</p>")),
    "balance_low": TemplateText(
        subject="{{ balance.holder }}: {{ balance.remaining }} {{ balance.unit }} left",
        text_body=("Hello {{ customer.name }},\n\n"
                   "the {{ balance.credit_type }} balance of {{ balance.holder }} has fallen below "
                   "{{ balance.threshold }} {{ balance.unit }}: {{ balance.remaining }} {{ balance.unit }} are left. "
                   "Top up in time to keep working without a break.\n\n{{ workspace.name }}\n"),
        html_body=("<p>Hello {{ customer.name }},</p>"
                   "<p>the {{ balance.credit_type }} balance of <strong>{{ balance.holder }}</strong> has fallen "
                   "below {{ balance.threshold }} {{ balance.unit }}: <strong>{{ balance.remaining }} "
                   "{{ balance.unit }}</strong> are left. Top up in time to keep working without a break.</p>"
                   "<p>{{ workspace.name }}</p>")),
}

PACK_VARIABLES = ("customer.name", "customer.email", "pack.name", "pack.quantity", "pack.remaining", "pack.unit",
                  "pack.expires_on", "pack.id", "workspace.name", "days_left", "event")
BALANCE_VARIABLES = ("customer.name", "customer.email", "balance.holder", "balance.credit_type", "balance.unit",
                     "balance.remaining", "balance.threshold", "workspace.name", "event")
VARIABLES = PACK_VARIABLES  # the expiry emails' (kept for callers that name one list)


def variables_for(event: str) -> tuple[str, ...]:
    return BALANCE_VARIABLES if event == "balance_low" else PACK_VARIABLES


def render_one(source: str, context: dict, *, html: bool, field: str) -> str:
    env = _html_env if html else _text_env
    try:
        return env.from_string(source).render(context)
    except SecurityError as exc:
        raise InvalidInput(f"The template {field} uses something templates may not: {exc}",
                           code="template_unsafe", field=field) from exc
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        # {{ 1/0 }}, {{ "a" + 1 }}...: the template's own error, never the server's.
        raise InvalidInput(f"The template {field} does not render: {exc}", code="template_invalid",
                           field=field) from exc


def render(template: TemplateText, context: dict) -> TemplateText:
    subject = render_one(template.subject, context, html=False, field="subject")
    # A header cannot hold line breaks.
    subject = " ".join(subject.split())
    return TemplateText(subject=subject,
                        text_body=render_one(template.text_body, context, html=False, field="text_body"),
                        html_body=(render_one(template.html_body, context, html=True, field="html_body")
                                   if template.html_body else None))


def check(template: TemplateText, event: str = "warning") -> None:
    """Refuse a template that does not render on the event's sample (bad syntax, unsafe access, unknown
    variable) before it is stored."""
    render(template, sample_context(event))


def context_for(*, event: str, customer_name: str, customer_email: str | None, pack_id: str, pack_name: str,
                quantity: int | str, remaining: int | str, unit: str, expires_at: datetime | None, now: datetime,
                workspace_name: str, where: tzinfo = UTC) -> dict:
    """`where`: the workspace's time zone; the expiry day is that day there (a pack "expiring on the 31st")."""
    days_left = max(0, (expires_at - now).days + (1 if (expires_at - now).seconds else 0)) if expires_at else 0
    return {
        "event": event,
        "customer": {"name": customer_name, "email": customer_email or ""},
        "pack": {"id": pack_id, "name": pack_name, "quantity": quantity, "remaining": remaining, "unit": unit,
                 "expires_on": timezones.local_day(expires_at, where).isoformat() if expires_at else ""},
        "workspace": {"name": workspace_name},
        "days_left": days_left,
    }


def balance_context(*, customer_name: str, customer_email: str | None, holder_name: str, credit_type: str,
                    unit: str, remaining: str, threshold: str, workspace_name: str) -> dict:
    """What a balance_low template may use: the holder whose balance fell, and the amounts as people read them."""
    return {
        "event": "balance_low",
        "customer": {"name": customer_name, "email": customer_email or ""},
        "balance": {"holder": holder_name, "credit_type": credit_type, "unit": unit, "remaining": remaining,
                    "threshold": threshold},
        "workspace": {"name": workspace_name},
    }


def sample_context(event: str, *, workspace_name: str = "Your business") -> dict:
    from datetime import UTC, timedelta

    if event == "balance_low":
        return balance_context(customer_name="Ada Example", customer_email="ada@example.com",
                               holder_name="London office", credit_type="Work hours", unit="hours",
                               remaining="4.50", threshold="5.00", workspace_name=workspace_name)

    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    expires = now + (timedelta(days=10) if event == "warning" else timedelta(days=-1))
    return context_for(event=event, customer_name="Ada Example", customer_email="ada@example.com",
                       pack_id="pack_sample", pack_name="10 massages", quantity=10, remaining=3, unit="massage",
                       expires_at=expires, now=now, workspace_name=workspace_name)
