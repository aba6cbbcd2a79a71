"""`signoff serve` sizes itself from the CPUs it may use, a container's quota included."""

from __future__ import annotations

import os

from signoff.cli.run import available_cpus, default_web_workers


def test_a_cgroup_quota_caps_the_cpus(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: rounds up to 2
    assert available_cpus(tmp_path) == min(affinity, 2)
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: at least 1
    assert available_cpus(tmp_path) == 1


def test_no_quota_or_no_cgroup_means_the_affinity(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == affinity
    assert available_cpus(tmp_path / "missing") == affinity
    (tmp_path / "cpu.max").write_text("garbage\n")
    assert available_cpus(tmp_path) == affinity


def test_default_workers_follow_the_cpus():
    assert default_web_workers() == available_cpus() + 1
