"""benchmarks/gpu_check.py (issue #16) on CPU at tiny sizes: the budget plan records a failing,
a timed-out and a starved section and still runs the rest; the 1M-IQL loop honours its cap
and says so (a fake step: no compilation in the default tier); the real IQL and vmap sections
run in the slow tier. (That vmapped seeds equal seeds run alone is tests/unit/test_seeds.py's.)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks/gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gc = _load()
TINY = dataclasses.replace(
    gc.TINY, hidden=(8, 8), batch_size=8, buffer_size=64, iql_total=30, iql_chunk=10
)


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_plan_records_failures_and_timeouts_and_runs_the_rest(tmp_path: Path) -> None:
    write = "import json,sys; open(sys.argv[1],'w').write(json.dumps({'x': 1}))"
    sections = [
        gc.Section(
            "boom",
            0.25,
            [
                *_py(
                    write.replace("'x': 1", "'error': 'ImportError: jax'") + "; raise SystemExit(3)"
                ),
                str(tmp_path / "a.json"),
            ],
            tmp_path / "a.json",
        ),
        gc.Section("slow", 0.25, _py("import time; time.sleep(30)"), tmp_path / "b.json"),
        gc.Section(
            "self_error",
            0.25,
            [*_py(write.replace("'x': 1", "'error': 'no d3rlpy'")), str(tmp_path / "c.json")],
            tmp_path / "c.json",
        ),
        gc.Section("good", 0.25, [*_py(write), str(tmp_path / "d.json")], tmp_path / "d.json"),
        gc.Section(
            "half",
            0.25,
            [*_py(write.replace("'x': 1", "'errors': {'cql': 'boom'}")), str(tmp_path / "e.json")],
            tmp_path / "e.json",
        ),
    ]
    report = gc.Report(tmp_path / "gpu_check.json")
    gc.run_plan(sections, budget=10.0, report=report, log=lambda _: None, reserve=0.0)
    out = json.loads(report.path.read_text())["sections"]
    # a section that exits non-zero is failed, with its own error line when it wrote one
    assert (out["boom"]["status"], out["boom"]["error"]) == ("failed", "ImportError: jax")
    assert out["slow"]["status"] == "timed_out" and "killed after" in out["slow"]["error"]
    assert out["slow"]["wall_s"] < 8.0  # its share (2.5 s + what "boom" left), not 30 s
    assert (out["self_error"]["status"], out["self_error"]["error"]) == ("failed", "no d3rlpy")
    assert out["good"]["status"] == "ok" and out["good"]["result"] == {"x": 1}
    assert out["half"]["status"] == "partial" and "cql" in out["half"]["error"]
    # time "boom" left unused passed on: "slow" got more than its own 2.5 s share
    assert out["slow"]["allotted_s"] > 2.5


def test_run_plan_skips_a_section_with_no_time_left(tmp_path: Path) -> None:
    sections = [
        gc.Section("first", 0.5, _py("import time; time.sleep(30)"), tmp_path / "a.json"),
        gc.Section("second", 0.5, _py("pass"), tmp_path / "b.json"),
    ]
    report = gc.Report(tmp_path / "r.json")
    # the first section may use the whole budget less the reserve: nothing is left after it
    sections[0].share = 1.0
    gc.run_plan(sections, budget=3.0, report=report, log=lambda _: None, reserve=1.5)
    out = json.loads(report.path.read_text())["sections"]
    assert out["first"]["status"] == "timed_out"
    assert out["second"]["status"] == "skipped"


def test_summary_ratios() -> None:
    data = {
        "sections": {
            "hybridrl": {"result": {"updates_per_s": {"sac": 3000.0, "iql": 100.0}}},
            "d3rlpy": {"result": {"updates_per_s": {"sac": 1000.0}}},
            "vmap": {
                "result": {
                    "agents": {
                        "iql": {
                            "2": {"vmapped_updates_per_s": 300, "sequential_updates_per_s": 200},
                            "5": {"error": "skipped"},
                        }
                    }
                }
            },
        }
    }
    assert gc.summarize(data) == {
        "ratio_hybridrl_over_d3rlpy": {"sac": 3.0},
        "vmap_speedup_over_sequential": {"iql": {"2": 1.5}},
    }


def _fake_step(seconds: float) -> Any:
    calls: list[int] = []

    def step(n: int) -> dict[str, float]:
        calls.append(n)
        time.sleep(seconds)
        return {"loss": float(len(calls))}

    return step, calls


def test_chunks_stop_at_the_cap_and_say_so(tmp_path: Path) -> None:
    res = gc.Partial(tmp_path / "capped.json")
    step, calls = _fake_step(0.0)
    gc.run_chunks(res, step, total=1000, chunk=300, cap=0.0, start=time.perf_counter())
    # one chunk always runs, then the cap stops it: no silent extrapolation to 1000
    assert calls == [300]
    saved = json.loads(res.path.read_text())
    assert saved["updates_done"] == 300 < saved["target_updates"] == 1000
    assert saved["cap_hit"] is True and saved["stopped_by"] == "cap"
    assert "steady_updates_per_s" not in saved  # one chunk, and it includes compilation


def test_chunks_run_to_the_total_with_a_short_last_chunk(tmp_path: Path) -> None:
    res = gc.Partial(tmp_path / "full.json")
    step, calls = _fake_step(0.01)
    gc.run_chunks(res, step, total=1000, chunk=300, cap=1e9, start=time.perf_counter())
    assert calls == [300, 300, 300, 100]
    assert res.data["updates_done"] == 1000 and res.data["cap_hit"] is False
    assert res.data["stopped_by"] is None and res.data["last_metrics"] == {"loss": 4.0}
    # updates/s from the chunks after the first: 700 updates in about 0.03 s
    assert 700 / sum(res.data["chunk_seconds"][1:]) == res.data["steady_updates_per_s"]


def test_chunks_stop_before_the_section_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(gc.DEADLINE_VAR, str(time.time() + 1.0))
    res = gc.Partial(tmp_path / "late.json")
    step, calls = _fake_step(0.0)
    gc.run_chunks(res, step, total=1000, chunk=300, cap=1e9, start=time.perf_counter())
    assert calls == [300]  # under 2 s left: the next chunk might be killed, so it stops
    assert res.data["cap_hit"] is True and res.data["stopped_by"] == "section deadline"


@pytest.mark.slow
def test_iql_section_runs_real_updates(tmp_path: Path) -> None:
    res = gc.Partial(tmp_path / "iql.json")
    gc.section_iql_1m(res, TINY, cap=1e9)
    assert res.data["updates_done"] == 30 and res.data["chunk_updates"] == [10, 10, 10]
    assert all(np.isfinite(v) for v in res.data["last_metrics"].values())


@pytest.mark.slow
def test_vmap_rows_measure_both_ways_and_skip_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = dataclasses.replace(TINY, vmap_agents=("iql",), vmap_seeds=(2,), vmap_chunk=10)
    res = gc.Partial(tmp_path / "vmap.json")
    gc.section_vmap(res, sizes)
    row = res.data["agents"]["iql"]["2"]
    assert row["vmapped_updates_per_s"] > 0 and row["sequential_updates_per_s"] > 0
    # no time left: every row says it was skipped, and nothing is measured
    monkeypatch.setenv(gc.DEADLINE_VAR, str(time.time() - 1.0))
    late = gc.Partial(tmp_path / "late.json")
    gc.section_vmap(late, dataclasses.replace(sizes, vmap_seeds=(1, 2)))
    rows = late.data["agents"]["iql"]
    assert set(rows) == {"1", "2"}
    assert all(
        r == {"error": rows[k]["error"]} and "deadline" in r["error"] for k, r in rows.items()
    )


def _fake_python(tmp_path: Path, body: str) -> str:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_d3rlpy_adapter_command_line_and_json(tmp_path: Path) -> None:
    from hybridrl import bench_d3rlpy

    # a stand-in Python that prints its arguments as the worker's JSON line
    python = _fake_python(tmp_path, 'echo "noise"; printf \'{"argv": "%s"}\\n\' "$*"')
    out = bench_d3rlpy.measure_d3rlpy(
        python,
        ["sac", "iql"],
        updates=7,
        batch_size=8,
        obs_dim=3,
        act_dim=2,
        device="cuda:0",
        hidden=[16, 16],
    )
    assert out["argv"] == (
        f"-P {bench_d3rlpy.SCRIPT} throughput --device cuda:0 --hidden 16,16 --agents sac,iql "
        "--updates 7 --batch-size 8 --obs-dim 3 --act-dim 2"
    )
    # the worker's own parser takes what the caller sends, for both commands
    args = bench_d3rlpy.parser().parse_args(out["argv"].split()[2:])
    assert (args.command, args.device, args.hidden, args.updates) == (
        "throughput",
        "cuda:0",
        "16,16",
        7,
    )
    train = bench_d3rlpy.parser().parse_args(
        [
            "train",
            "--data",
            "d.npz",
            "--env",
            "Hopper-v5",
            "--algo",
            "cql",
            "--steps",
            "5",
            "--eval-interval",
            "5",
        ]
    )
    assert train.device == "cpu" and train.algo == "cql"


def test_d3rlpy_adapter_failure_names_the_worker(tmp_path: Path) -> None:
    from hybridrl import bench_d3rlpy

    python = _fake_python(
        tmp_path, 'echo "ModuleNotFoundError: No module named d3rlpy" >&2; exit 1'
    )
    with pytest.raises(RuntimeError, match="d3rlpy worker failed:\nModuleNotFoundError"):
        bench_d3rlpy.run_worker(bench_d3rlpy.worker_command(python, "throughput"))
    assert bench_d3rlpy.find_d3rlpy_python(python) == python
    assert bench_d3rlpy.find_d3rlpy_python(str(tmp_path / "missing")) in (
        None,
        str(ROOT / ".venv-compare/bin/python"),
    )
