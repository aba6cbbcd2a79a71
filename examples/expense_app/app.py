"""The specification's Quick Start, running on Signoff's add-on.

Differences from the specification's text, and why: the add-on is imported from
``signoff.addon`` (it is not part of Flask-AppBuilder), and the database is
PostgreSQL migrated with ``signoff db upgrade`` (row-level security and advisory
locks have no SQLite equivalent). Run it with::

    export SIGNOFF_DATABASE_URL=postgresql://signoff_app@localhost/signoff
    psql ... -f examples/expense_app/schema.sql   # as signoff_owner: the app's own table
    flask --app examples.expense_app.app run
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, current_app
from flask_appbuilder import AppBuilder, Model
from flask_appbuilder.models.sqla.base import SQLA
from sqlalchemy import Boolean, Column, Integer, Numeric, String

# 2. Define Approval Workflow (exactly as the specification writes it)
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


# 3. Use in Your Models
class ExpenseReport(Model):
    __tablename__ = "expense_report"
    id = Column(Integer, primary_key=True)
    amount = Column(Numeric(10, 2), nullable=False)
    description = Column(String(500))
    status = Column(String(50), default="draft")
    requires_approval = Column(Boolean, default=False)

    # Define which workflow to use
    _approval_workflow = "expense_approval"

    def submit_for_approval(self) -> bool:
        """Submit expense report for approval."""
        from signoff.workflow.manager import ApprovalWorkflowManager

        if self.amount > 50:  # Requires approval for amounts > $50
            self.requires_approval = True
            self.status = "pending_approval"
            current_app.appbuilder.session.commit()  # type: ignore[attr-defined]

            # Trigger approval workflow
            workflow_manager = ApprovalWorkflowManager(current_app.appbuilder)  # type: ignore[attr-defined]
            return workflow_manager.start_approval_workflow(self)
        self.status = "approved"
        return True


def create_app(config: dict[str, Any] | None = None) -> Flask:
    # 1. Basic Setup
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SIGNOFF_SECRET_KEY", "your-secret-key")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("SIGNOFF_DATABASE_URL")
    app.config["FAB_APPROVAL_WORKFLOWS"] = FAB_APPROVAL_WORKFLOWS
    app.config.update(config or {})

    db = SQLA(app)
    with app.app_context():  # FAB 5 initialises inside an app context
        appbuilder = AppBuilder(app, db.session)

        # Register approval workflow addon
        from signoff.addon import ApprovalWorkflowAddonManager, add_addon_manager

        add_addon_manager(appbuilder, ApprovalWorkflowAddonManager)
    return app
