"""The floors of docs/ARCHITECTURE.md, held by a test.

Every module of ``signoff`` is parsed with :mod:`ast` (imports inside functions
count too) and mapped to its floor by the table below, longest prefix first. A
module may import from its own floor or a lower one, never a higher one, and no
modules may import each other in a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "platform"

#: Floors, bottom to top. Prefixes are module names; the longest match wins.
FLOORS: list[tuple[str, list[str]]] = [
    (
        "leaves",
        [
            "signoff",  # the package's __init__ (a version string)
            "signoff.errors",
            "signoff.text",
            "signoff.inputs",
            "signoff.roles",
            "signoff.workflow.errors",
        ],
    ),
    (
        "infrastructure",
        [
            "signoff.config",
            "signoff.crypto",
            "signoff.db",
            "signoff.extensions",
            "signoff.languages",
            "signoff.limiter",
        ],
    ),
    ("audit", ["signoff.audit"]),
    (
        "tenancy",
        [
            "signoff.tenancy",
            "signoff.security.caller",
            "signoff.security.models",
            "signoff.security.mfa_state",
            "signoff.security.passwords",
            "signoff.security.sessions",
            "signoff.security.totp",
            # Plans and quota checks: whatever creates members, workflows or requests
            # checks its quota in its own transaction (docs/ARCHITECTURE.md §10).
            "signoff.billing.plans",
            "signoff.billing.models",
            "signoff.billing.quotas",
        ],
    ),
    (
        "workflow",
        [
            "signoff.workflow",
            "signoff.models",
            "signoff.notifications.models",
            "signoff.attachments.models",
        ],
    ),
    (
        "actions and services",
        [
            "signoff.workflow.actions",
            "signoff.workflow.escalation",
            "signoff.provisioning",
            "signoff.notifications",
            "signoff.jobs",
            "signoff.security.mfa",
            "signoff.billing",
            "signoff.attachments",
        ],
    ),
    # The specification's ApprovalWorkflowManager acts as the user of the current
    # HTTP request (security.actor), so it stands with the web-facing code.
    ("web-facing security", ["signoff.security", "signoff.workflow.manager"]),
    ("faces", ["signoff.api", "signoff.views"]),
    (
        "assembly",
        [
            "signoff.app",
            "signoff.addon",
            "signoff.approval",  # the specification's API; its views are the add-on's
            "signoff.cli",
            "signoff.devservers",
            "signoff.worker",
        ],
    ),
]

RANK = {prefix: i for i, (_, prefixes) in enumerate(FLOORS) for prefix in prefixes}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "signoff").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def floor_of(module: str) -> int:
    name = module
    while name not in RANK:
        if "." not in name:
            raise AssertionError(f"{module} has no floor in FLOORS")
        name = name.rsplit(".", 1)[0]
    return RANK[name]


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` for every import of ours, at any depth of the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` mod.
            targets = [
                f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix
                for a in node.names
            ]
        for target in targets:
            if target.split(".")[0] != "signoff":
                continue
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module:
                yield target, node.lineno


def graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {m: dict(imports(m, p, known)) for m, p in known.items()}


def test_every_module_has_a_floor() -> None:
    for module in modules():
        floor_of(module)


def test_no_module_imports_from_a_higher_floor() -> None:
    upward = [
        f"{m}:{line} ({FLOORS[floor_of(m)][0]}) imports {t} ({FLOORS[floor_of(t)][0]})"
        for m, targets in graph().items()
        for t, line in targets.items()
        if floor_of(t) > floor_of(m)
    ]
    assert not upward, "imports from a higher floor:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    edges = graph()
    # Tarjan's strongly connected components: any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in edges.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_checker_sees_function_level_imports() -> None:
    """The layer rule would be toothless if imports inside functions were missed."""
    source = "def f():\n    from signoff.app import create_app\n"
    tree = ast.parse(source)
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert found and found[0].module == "signoff.app"
    assert floor_of("signoff.app") > floor_of("signoff.db.binding")
