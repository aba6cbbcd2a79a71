"""Webhooks: tenant endpoints receiving signed event deliveries (being built)."""

from __future__ import annotations

from signoff.notifications.channels import (
    Delivery,
    DeliveryFailed,
    FanOutContext,
    FunctionChannel,
    Outcome,
)


def targets(ctx: FanOutContext) -> list[str]:
    return []


def send(delivery: Delivery) -> Outcome:
    raise DeliveryFailed("webhook delivery is not available", retryable=False)


CHANNEL = FunctionChannel("webhook", targets, send)
