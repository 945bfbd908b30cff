"""The hardware record the benchmark scripts print beside their numbers."""

from __future__ import annotations

import json

from hybridrl.evaluation.machine import describe_machine, machine_info


def test_machine_info_is_json_and_names_the_cpu_and_load() -> None:
    info = machine_info()
    assert json.loads(json.dumps(info)) == info
    assert info["cpu"] and info["nproc"] >= 1 and info["backend"] == "cpu"
    assert info["date"].endswith("UTC")
    line = describe_machine(info)
    assert info["cpu"] in line and f"nproc {info['nproc']}" in line
