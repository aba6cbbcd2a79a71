"""FAB security manager, tenant resolution at login, rate-limit keys, MFA, sanitizing."""
