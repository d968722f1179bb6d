"""Every table, imported in one place so Alembic and the tests see the whole metadata."""

from creditdesk.audit import AuditEvent  # noqa: F401
from creditdesk.db import Base  # noqa: F401
from creditdesk.idempotency import IdempotencyKey  # noqa: F401
from creditdesk.parties.models import (  # noqa: F401
    ApiKey,
    Customer,
    Office,
    Team,
    TeamMember,
    User,
    UserOffice,
    Workspace,
)

import creditdesk.catalog.models  # noqa: F401,E402
import creditdesk.billing.models  # noqa: F401,E402
import creditdesk.billing.invoice_models  # noqa: F401,E402
import creditdesk.billing.credit_models  # noqa: F401,E402
import creditdesk.billing.group_models  # noqa: F401,E402  (group accounts, pricing agreements)
import creditdesk.credits.models  # noqa: F401,E402
import creditdesk.ledger.models  # noqa: F401,E402
import creditdesk.sms.models  # noqa: F401,E402

metadata = Base.metadata
import creditdesk.notify.models  # noqa: F401,E402
import creditdesk.billing.asset_models  # noqa: F401,E402  (account assets)
import creditdesk.billing.wallet_models  # noqa: F401,E402  (wallets, payment preferences, gateway charges)
import creditdesk.billing.subscription_models  # noqa: F401,E402  (subscriptions, billing runs)
import creditdesk.credits.low_balance_models  # noqa: F401,E402  (low-balance thresholds, crossings)
import creditdesk.activities.models  # noqa: F401,E402  (activities, seed 002)
import creditdesk.notify.communication_models  # noqa: F401,E402  (bill communications, seed 002)
import creditdesk.integrations.models  # noqa: F401,E402  (packs from CRM deals)
import creditdesk.webhooks.models  # noqa: F401,E402  (outbound webhooks: endpoints, deliveries, attempts)
