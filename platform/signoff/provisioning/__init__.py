"""Provisioning: what creates a tenant with its people and workflows in one go
(self sign-up, YAML manifests). It stands above both tenancy and workflow."""
