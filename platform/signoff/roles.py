"""Names of the built-in roles: one definition each, imported everywhere else."""

#: The tenant role that administers a tenant (members, workflows, branding, audit).
ADMIN_ROLE = "Admin"
#: Tenant roles every tenant starts with; tenants may add their own.
BUILTIN_TENANT_ROLES = (ADMIN_ROLE, "Manager", "Finance_Manager", "Requester")
#: The FAB role every tenant member has: it opens the tenant-scoped views, inside
#: which the tenant's own roles decide.
MEMBER_ROLE = "Member"
#: FAB's administrator role (platform staff, never a tenant's role).
FAB_ADMIN_ROLE = "Admin"
#: The FAB role of platform operators: the operator console and nothing else (no FAB
#: security pages, no tenant pages). FAB's ``Admin`` is the break-glass platform
#: administrator, created only by ``signoff create-platform-admin``.
OPERATOR_ROLE = "Operator"
