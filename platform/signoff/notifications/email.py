"""E-mail: HTML and plain-text notifications with signed action links (being built)."""

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
    raise DeliveryFailed("e-mail delivery is not available", retryable=False)


CHANNEL = FunctionChannel("email", targets, send)
