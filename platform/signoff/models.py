"""Imports every model module so the shared metadata is complete (Alembic, tests)."""

from flask_appbuilder.security.sqla import models as fab_models  # noqa: F401

from signoff.attachments import models as attachment_models  # noqa: F401
from signoff.audit import models as audit_models  # noqa: F401
from signoff.billing import models as billing_models  # noqa: F401
from signoff.notifications import models as notification_models  # noqa: F401
from signoff.security import models as mfa_models  # noqa: F401
from signoff.tenancy import account_tokens as account_token_models  # noqa: F401
from signoff.tenancy import apikey_models  # noqa: F401
from signoff.tenancy import invites as invite_models  # noqa: F401
from signoff.tenancy import models as tenancy_models  # noqa: F401
from signoff.tenancy import support_models as support_models
from signoff.workflow import models as workflow_models  # noqa: F401
