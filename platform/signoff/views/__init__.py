"""FAB views: the per-tenant approval portal, the tenant admin, the operator console,
sign-up and invitations. ``signoff.app`` registers them."""
