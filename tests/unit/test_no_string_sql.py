"""No SQL is built from strings: every statement is a constant with bound parameters.

The test parses every module of the package and every migration and looks at the
first argument of ``text()``, ``.execute()``, ``.exec_driver_sql()``,
``.executemany()``, ``.scalar()``, ``.scalars()`` and ``op.execute()``. An f-string
with a placeholder, ``+`` or ``%`` on strings, ``.format()`` or ``.join()`` there
(directly, or through a local variable assigned such an expression) is a finding.

A few statements must interpolate an identifier, which PostgreSQL cannot bind as a
parameter (a role in ``ALTER ROLE``, a database name, a table in ``ALTER TABLE``).
They are allowed only in the functions listed below, each with its reason and the
exact placeholder expressions it may use (constants, loop variables over module
constants, values PostgreSQL itself quoted); anything else there is a finding too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = [ROOT / "platform" / "signoff", ROOT / "migrations"]

SQL_CALLS = {"text", "execute", "exec_driver_sql", "executemany", "scalar", "scalars"}

TABLE = frozenset({"table"})

#: (path relative to the repository, enclosing function) -> (why it is safe, the only
#: placeholder expressions allowed there).
ALLOWED: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("platform/signoff/db/admin.py", "init_roles"): (
        "role names are module constants; the password and the database name are "
        "quoted by PostgreSQL itself (quote_literal / quote_ident) in a parameterised SELECT",
        frozenset(
            {"role", "quoted.scalar_one()", "ident.scalar_one()", "ident"}
            | {"OWNER_ROLE", "APP_ROLE"}
        ),
    ),
    ("migrations/versions/0001_fab_security.py", "upgrade"): (
        "GRANTs over the module's constant tuples of FAB tables and sequences",
        frozenset({"table", "seq"}),
    ),
    ("migrations/versions/0002_tenancy.py", "enable_tenant_isolation"): (
        "ALTER TABLE / CREATE POLICY for table names from the module's constant tuple",
        TABLE,
    ),
    ("migrations/versions/0002_tenancy.py", "upgrade"): (
        "GRANTs over the module's constant tuple of tenant tables",
        TABLE,
    ),
    ("migrations/versions/0011_notification_channels.py", "enable_tenant_isolation"): (
        "ALTER TABLE / CREATE POLICY for table names from the module's constant tuple",
        TABLE,
    ),
    ("migrations/versions/0011_notification_channels.py", "upgrade"): (
        "GRANTs over the module's constant tuple of tenant tables",
        TABLE,
    ),
    ("migrations/versions/0003_audit.py", "enable_tenant_isolation"): (
        "ALTER TABLE / CREATE POLICY for table names from the module's constant tuple",
        TABLE,
    ),
    ("migrations/versions/0003_audit.py", "upgrade"): (
        "function GRANT/REVOKE over the module's constant (signature, grantee) pairs",
        frozenset({"signature", "grantee", "table"}),
    ),
    ("migrations/versions/0003_audit.py", "downgrade"): (
        "DROP FUNCTION over the module's constant function signatures",
        frozenset({"signature"}),
    ),
    ("migrations/versions/0004_workflow.py", "enable_tenant_isolation"): (
        "ALTER TABLE / CREATE POLICY for table names from the module's constant tuple",
        TABLE,
    ),
    ("migrations/versions/0004_workflow.py", "upgrade"): (
        "GRANTs over the module's constant tuple of tenant tables",
        TABLE,
    ),
    ("migrations/versions/0010_fab_id_defaults.py", "upgrade"): (
        "sequence defaults for FAB table names from the module's constant tuple",
        frozenset({"table", "seq"}),
    ),
    ("migrations/versions/0010_fab_id_defaults.py", "downgrade"): (
        "sequence defaults for FAB table names from the module's constant tuple",
        frozenset({"table", "seq"}),
    ),
}


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _is_dynamic(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr in ("format", "replace"):
            return True
        # str.join builds strings; SQLAlchemy's select().join() does not.
        receiver = node.func.value
        return (
            node.func.attr == "join"
            and isinstance(receiver, ast.Constant)
            and isinstance(receiver.value, str)
        )
    return False


def _placeholders(node: ast.AST) -> frozenset[str] | None:
    """The f-string's placeholder expressions; ``None`` for any other dynamic form."""
    if not isinstance(node, ast.JoinedStr):
        return None
    return frozenset(ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue))


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str) -> None:
        self.path = path
        self.scopes: list[tuple[str, dict[str, list[ast.AST]]]] = [("<module>", {})]
        self.findings: list[tuple[str, str, int, str, frozenset[str] | None]] = []

    def _assignments(self, node: ast.AST) -> dict[str, list[ast.AST]]:
        found: dict[str, list[ast.AST]] = {}
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, []).append(sub.value)
            elif (
                isinstance(sub, ast.AnnAssign | ast.AugAssign)
                and isinstance(sub.target, ast.Name)
                and sub.value is not None
            ):
                value = sub.value if isinstance(sub, ast.AnnAssign) else sub
                found.setdefault(sub.target.id, []).append(value)
        return found

    def visit_Module(self, node: ast.Module) -> None:
        self.scopes = [("<module>", self._assignments(node))]
        self.generic_visit(node)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append((node.name, self._assignments(node)))
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Call(self, node: ast.Call) -> None:
        if _call_name(node) in SQL_CALLS and node.args:
            arg = node.args[0]
            candidates = [arg]
            if isinstance(arg, ast.Name):
                for _name, assigned in reversed(self.scopes):
                    if arg.id in assigned:
                        candidates = assigned[arg.id]
                        break
            for value in candidates:
                if _is_dynamic(value) or isinstance(value, ast.AugAssign):
                    self.findings.append(
                        (
                            self.path,
                            self.scopes[-1][0],
                            node.lineno,
                            ast.unparse(value)[:120],
                            _placeholders(value),
                        )
                    )
        self.generic_visit(node)


def _scan() -> list[tuple[str, str, int, str, frozenset[str] | None]]:
    findings = []
    for base in SCANNED:
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            scanner = _Scanner(rel)
            scanner.visit(ast.parse(path.read_text(), filename=rel))
            findings.extend(scanner.findings)
    return findings


def test_no_sql_is_built_from_strings():
    problems = []
    for path, func, line, source, placeholders in _scan():
        allowed = ALLOWED.get((path, func))
        if allowed is not None and placeholders is not None and placeholders <= allowed[1]:
            continue
        problems.append(f"{path}:{line} in {func}(): {source}")
    assert not problems, "SQL built from strings (bind parameters instead):\n" + "\n".join(problems)


def test_the_scanner_finds_string_built_sql():
    """The check itself works: each forbidden shape is caught, constants are not."""
    source = """
def bad(session, name, table):
    session.execute(text(f"SELECT * FROM t WHERE name = '{name}'"))
    session.execute(text("SELECT * FROM t WHERE name = '" + name + "'"))
    session.execute(text("SELECT * FROM t WHERE name = '%s'" % name))
    session.execute(text("SELECT * FROM {} ".format(table)))
    query = f"DELETE FROM {table}"
    session.execute(text(query))
    cursor.execute("SELECT " + name)

def good(session, name):
    session.execute(text("SELECT * FROM t WHERE name = :n"), {"n": name})
    query = "SELECT 1"
    session.execute(text(query))
"""
    scanner = _Scanner("example.py")
    scanner.visit(ast.parse(source))
    lines = sorted({line for _p, _f, line, _s, _plain in scanner.findings})
    assert lines == [3, 4, 5, 6, 8, 9]
    assert all(func == "bad" for _p, func, _l, _s, _plain in scanner.findings)
