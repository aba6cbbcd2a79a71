"""axe-core in the browser tests: the npm package, installed once per machine into a
cache directory outside the repository, injected into a page by Playwright.

``AXE_VERSION`` is pinned. ``npm`` installs it on first use into
``$XDG_CACHE_HOME/signoff-test/axe-core-<version>`` (``~/.cache`` by default); without
``npm`` or the registry the tests FAIL saying so, they are never skipped. Pages served
with a Content-Security-Policy need a context made with ``bypass_csp=True`` (the
policy allows only the site's own scripts, and axe is injected inline).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

AXE_VERSION = "4.10.3"
#: WCAG 2.0 and 2.1, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_script() -> Path:
    """The path of ``axe.min.js``, installing the pinned axe-core with npm if needed."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    prefix = cache / "signoff-test" / f"axe-core-{AXE_VERSION}"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            "the accessibility tests need npm to install axe-core "
            f"(`npm install --prefix {prefix} axe-core@{AXE_VERSION}`)",
            pytrace=False,
        )
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            f"axe-core@{AXE_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not script.exists():
        pytest.fail(
            f"npm could not install axe-core@{AXE_VERSION}: {done.stderr.strip()[-800:]}",
            pytrace=False,
        )
    return script


def violations(page: Any) -> list[dict[str, Any]]:
    """axe's WCAG 2.1 A/AA violations of the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script()))
    result: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))
            }));
        }""",
        WCAG_TAGS,
    )
    return result


def describe(found: dict[str, list[dict[str, Any]]]) -> str:
    """A readable report of violations by page."""
    lines = []
    for name, items in found.items():
        for v in items:
            lines.append(f"{name}: {v['id']} ({v['impact']}): {v['help']}")
            for node in v["nodes"][:5]:
                lines.append(f"    {node['target']}: {(node['summary'] or '').splitlines()[-1]}")
    return "\n".join(lines)
