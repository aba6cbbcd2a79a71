"""The Helm chart against the code it runs (``helm`` itself is not needed): every probe
and CronJob names a real ``signoff`` command, the beat and the workers have liveness
probes, and every job the beat schedules has a CronJob alternative."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import yaml

from signoff.cli import cli
from signoff.worker.app import beat_schedule

CHART = Path(__file__).resolve().parents[2] / "helm" / "signoff"

#: Each beat job and the CronJob (values key, ``signoff`` arguments) that replaces it.
#: ``heartbeat`` has none: it tells /health that a worker runs, and a CronJob is not one.
CRONJOB_OF_BEAT_JOB = {
    "outbox-sweep": ("notifications", ["notifications", "send"]),
    "sla-sweep": ("escalations", ["escalations", "run"]),
    "audit-checkpoints": ("auditCheckpoint", ["audit", "checkpoint"]),
    "cleanup": ("cleanup", ["cleanup"]),
    "digests": ("digests", ["notifications", "digests"]),
}


def _values() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _command(args: list[str]) -> click.Command:
    """The click command ``signoff <args>`` runs; fails when there is none."""
    command: click.Command = cli
    for arg in args:
        if arg.startswith("-"):
            break
        assert isinstance(command, click.Group), f"signoff {' '.join(args)}: {arg!r} is extra"
        found = command.commands.get(arg)
        assert found is not None, f"signoff {' '.join(args)}: no command {arg!r}"
        command = found
    assert not isinstance(command, click.Group), f"signoff {' '.join(args)} is a group"
    return command


def test_every_beat_job_has_a_cronjob_that_runs_a_real_command() -> None:
    scheduled = set(beat_schedule(SimpleNamespace(config={})))  # type: ignore[arg-type]
    assert scheduled - {"heartbeat"} == set(CRONJOB_OF_BEAT_JOB)
    values = _values()["cronJobs"]
    rendered = (CHART / "templates" / "cronjobs.yaml").read_text()
    in_template = set(re.findall(r"\$shared\.(\w+)", rendered))
    for key, args in CRONJOB_OF_BEAT_JOB.values():
        assert values[key]["args"] == args, key
        assert values[key]["enabled"] is False, f"{key}: off while the beat runs it"
        assert key in in_template, f"cronjobs.yaml does not render cronJobs.{key}"
        _command(args)


def test_worker_and_beat_have_liveness_probes_that_are_real_commands() -> None:
    values = _values()
    template = (CHART / "templates" / "worker.yaml").read_text()
    for component in ("worker", "beat"):
        assert values[component]["livenessProbe"]["enabled"] is True, component
    probes = re.findall(r'command: \["signoff", "([\w-]+)"', template)
    assert sorted(probes) == ["beat-ping", "worker-ping"]
    for name in probes:
        _command([name])
    # The probe is not limited to one component.
    assert "{{- if $spec.livenessProbe.enabled }}" in template
    beat_branch = template.split('{{- if eq $component "beat" }}\n              # ')[1]
    assert beat_branch.split("{{- else }}")[0].strip().endswith('["signoff", "beat-ping"]')
