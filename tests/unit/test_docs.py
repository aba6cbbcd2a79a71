"""The README's layout section names every module and package at the top of the
package, so a newcomer's map of the code cannot quietly go stale."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "platform" / "signoff"


def _layout() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "the README's Layout section has no code block"
    return block.group(1)


def test_readme_layout_names_every_top_level_module_and_package():
    layout = _layout()
    named = set(re.findall(r"([a-z_]+)(?:\.py|/)", layout))
    present = {
        p.stem if p.suffix == ".py" else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__")
        or (p.is_dir() and not p.name.startswith("__"))
    }
    assert sorted(present - named) == []


def test_readme_layout_names_nothing_that_is_gone():
    layout = _layout()
    entries = re.findall(r"^  ([a-z_]+(?:\.py|/))", layout, re.M)
    assert entries, "no package entries found"
    missing = [e for e in entries if not (PACKAGE / e.rstrip("/")).exists()]
    assert missing == []


def test_readme_configuration_table_names_every_signoff_setting():
    config = (PACKAGE / "config.py").read_text()
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    keys = set(re.findall(r"\bSIGNOFF_[A-Z0-9_]+", config))
    assert sorted(k for k in keys if k not in table) == []
