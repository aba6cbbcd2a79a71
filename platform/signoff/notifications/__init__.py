"""Notifications: the outbox fanned out to channels (e-mail, Slack, webhooks, in-app),
delivered at least once with a delivery key per row and channel, retried with
backoff, dead-lettered after the last attempt. The worker (:mod:`signoff.worker`)
runs it; the actions only write outbox rows in their own transaction."""
