"""``signoff billing sync-plans``: the configured plans as Stripe Products and Plans."""

from __future__ import annotations

import click


@click.group("billing")
def billing_group() -> None:
    """Billing with Stripe."""


@billing_group.command("sync-plans")
def sync_plans_command() -> None:
    """Create or update a Stripe Product and recurring Plan for every paid plan
    (SIGNOFF_BILLING_PLANS); running it again changes nothing."""
    import stripe

    from signoff.app import create_app
    from signoff.billing.stripe_api import sync_plans
    from signoff.errors import ActionError

    app = create_app()
    with app.app_context():
        try:
            lines = sync_plans()
        except ActionError as exc:
            raise click.ClickException(exc.message) from exc
        except stripe.StripeError as exc:
            raise click.ClickException(f"Stripe refused: {exc}") from exc
    for line in lines:
        click.echo(
            f"{line['plan']}: {line['action']}"
            + (f" ({line['product']}, {line['stripe_plan']})" if "product" in line else "")
        )
