"""Tenants, memberships and the tenant's own roles."""
