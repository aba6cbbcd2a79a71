"""Approval workflows: definitions, the rule language, the pure engine and the actions."""
