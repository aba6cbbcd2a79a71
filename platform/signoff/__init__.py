"""Signoff: multi-tenant approval workflows on Flask-AppBuilder, isolated by PostgreSQL."""

__version__ = "0.1.0"
