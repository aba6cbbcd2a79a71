"""The specification's Quick Start, as written: steps 1 to 4 in order.

Only what Flask-AppBuilder 5.3 or PostgreSQL forces differs, each line marked
``# differs:`` and listed in ``README.md`` beside this file. The names the
specification uses without importing them (``Column``, ``current_app``...) are
imported. Run it with::

    export SIGNOFF_DATABASE_URL=postgresql+psycopg://signoff_app:...@localhost/signoff
    psql "$OWNER_URL" -f examples/expense_app/schema.sql   # the app's own table
    flask --app examples.expense_app.app run
"""

from __future__ import annotations

import os

from flask import Flask, current_app
from flask_appbuilder import AppBuilder  # differs: FAB 5 has no SQLA here
from flask_appbuilder.models.sqla.base import SQLA  # differs: ...it is here
from sqlalchemy import Boolean, Column, Integer, Numeric, String

# 1. Basic Setup
app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("SIGNOFF_SECRET_KEY", "your-secret-key")
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["SIGNOFF_DATABASE_URL"]  # differs: PostgreSQL
app.config.from_prefixed_env("EXPENSE_APP")  # tests and deployments: EXPENSE_APP_<KEY>

db = SQLA(app)
with app.app_context():  # differs: FAB 5 builds AppBuilder inside an app context
    appbuilder = AppBuilder(app, db.session)

# Register approval workflow addon
from signoff.approval import ApprovalWorkflowAddonManager  # noqa: E402

ApprovalWorkflowAddonManager.register(appbuilder, app)  # differs: FAB 5 has no add_addon_manager

# 2. Define Approval Workflow
# Configure approval workflows
FAB_APPROVAL_WORKFLOWS = {
    "expense_approval": {
        "name": "Expense Approval",
        "description": "Multi-step expense approval workflow",
        "steps": [
            {
                "name": "Manager Approval",
                "required_role": "Manager",
                "requires_mfa": False,
                "auto_approve_threshold": None,
            },
            {
                "name": "Finance Approval",
                "required_role": "Finance_Manager",
                "requires_mfa": True,
                "auto_approve_threshold": 1000,
            },
        ],
        "initial_state": "pending_manager_approval",
        "approval_required_states": ["pending_manager_approval", "pending_finance_approval"],
        "auto_approve_conditions": {"amount_threshold": 100, "user_roles": ["Senior_Manager"]},
    }
}

app.config["FAB_APPROVAL_WORKFLOWS"] = FAB_APPROVAL_WORKFLOWS

# 3. Use in Your Models
from signoff.approval.workflow_manager import ApprovalWorkflowManager  # noqa: E402


class ExpenseReport(db.Model):  # type: ignore[name-defined]
    id = Column(Integer, primary_key=True)
    amount = Column(Numeric(10, 2), nullable=False)
    description = Column(String(500))
    status = Column(String(50), default="draft")
    requires_approval = Column(Boolean, default=False)

    # Define which workflow to use
    _approval_workflow = "expense_approval"

    def submit_for_approval(self) -> bool:
        """Submit expense report for approval."""
        if self.amount > 50:  # Requires approval for amounts > $50
            self.requires_approval = True
            self.status = "pending_approval"

            # Trigger approval workflow
            workflow_manager = ApprovalWorkflowManager(current_app.appbuilder)  # type: ignore[attr-defined]
            return workflow_manager.start_approval_workflow(self)
        else:
            self.status = "approved"
            return True


# 4. Create Approval Views
from signoff.approval.workflow_views import ApprovalWorkflowView  # noqa: E402

# Add approval views to your app
with app.app_context():  # differs: FAB 5 adds views inside an app context
    appbuilder.add_view(
        ApprovalWorkflowView, "Pending Approvals", category="Workflows", category_icon="fa-tasks"
    )
