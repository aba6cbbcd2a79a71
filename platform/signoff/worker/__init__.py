"""The worker: Celery on Redis, bound to the Flask app factory.

``create_app`` builds one Celery app per Flask app (:func:`make_celery`); every task
runs inside that Flask app's context, carries ids only (a tenant, a request) and
binds the tenant per transaction like the CLI sweeps, after checking that the tenant
exists and is active. ``signoff worker`` runs a worker (``--beat`` embeds the
scheduler for small installations); ``signoff beat`` runs the scheduler alone.

Delivery is at least once: actions enqueue a delivery task after commit (never
before); when that enqueue is lost (broker down, a crash between commit and
enqueue) the outbox sweep on the beat schedule finds the rows. With the broker
down, actions still commit and the app stays up; ``/ready`` says the worker is
degraded.
"""
