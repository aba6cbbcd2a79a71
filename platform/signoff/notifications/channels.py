"""What a channel is: who it reaches for an outbox row, and how one delivery is sent.

A channel module (``email``, ``slack``, ``webhooks``) provides

- ``targets(ctx) -> list[str]``: the targets of one outbox row on this channel
  (``[""]`` for the recipient themselves, endpoint ids for webhooks, ``[]`` for none);
- ``send(delivery) -> Outcome``: deliver once, raising :class:`DeliveryFailed`.

:mod:`signoff.notifications.dispatch` creates one ``notification_delivery`` row per
target (the delivery key) and calls ``send`` until it succeeds or the row is dead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from signoff.notifications.models import NotificationDelivery
from signoff.workflow.models import NotificationOutbox


class DeliveryFailed(Exception):
    """One attempt failed. ``retryable=False`` dead-letters the delivery at once (a
    permanent refusal such as a revoked token); otherwise it is retried with backoff."""

    def __init__(
        self, message: str, *, response_code: int | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.response_code = response_code
        self.retryable = retryable


@dataclass(frozen=True)
class Outcome:
    response_code: int | None = None
    latency_ms: int | None = None


@dataclass
class FanOutContext:
    """What a channel needs to decide its targets for one outbox row."""

    session: Session
    tenant_id: uuid.UUID
    note: NotificationOutbox
    #: The recipient's preferences (``notification_preference.settings``), or ``{}``.
    preferences: Mapping[str, Any] = field(default_factory=dict)
    #: Shared by every row of one fan-out: what a channel read once (say, the tenant's
    #: webhook endpoints) need not be read again for the next row.
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass
class Delivery:
    """One attempt's inputs: the bound session, the delivery row and its outbox row."""

    session: Session
    tenant_id: uuid.UUID
    row: NotificationDelivery
    note: NotificationOutbox


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    def targets(self, ctx: FanOutContext) -> list[str]: ...

    def send(self, delivery: Delivery) -> Outcome: ...


@dataclass(frozen=True)
class FunctionChannel:
    """A channel made of two functions (how the channel modules declare themselves)."""

    name: str
    targets_fn: Callable[[FanOutContext], list[str]]
    send_fn: Callable[[Delivery], Outcome]

    def targets(self, ctx: FanOutContext) -> list[str]:
        return self.targets_fn(ctx)

    def send(self, delivery: Delivery) -> Outcome:
        return self.send_fn(delivery)
