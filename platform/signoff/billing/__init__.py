"""Billing with Stripe: plans and quotas, subscriptions, signed webhooks, dunning.

Floors (tests/unit/test_layers.py): ``plans``, ``models`` and ``quotas`` stand with
tenancy, so that whatever creates members, workflows or requests can check a quota in
its own transaction; ``stripe_api``, ``service`` and ``webhooks`` are services. With no
``SIGNOFF_STRIPE_SECRET_KEY`` billing is off: plans stay operator-managed labels and no
quota is enforced. docs/ARCHITECTURE.md §10 says how it fits together.
"""
