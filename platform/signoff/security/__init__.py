"""Who is acting: FAB's security manager and token API, MFA (TOTP arithmetic, the
service, its web policy), passwords, the acting user of a request, and the rate-limit
hooks of the web app (the limiter itself is :mod:`signoff.limiter`)."""
