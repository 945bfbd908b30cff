"""Tests of hybridrl.evaluation.report on synthetic run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridrl.evaluation.report import (
    format_table,
    load_run,
    load_runs,
    per_task_table,
    plot_curves,
    summarize,
    write_report,
)
from hybridrl.types import HybridRLError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SWITCH, END = 1000, 5000
TASKS = ("hopper", "walker")
SEEDS = (0, 1, 2)

# wsrl: every run identical -> degenerate intervals.
#   before 50, dip score 30 (dip 20), after 80, online episode scores 60, 40 -> regret 0.5.
# calql: before 40, no drop (dip 0), episode score 100 -> regret 0; final scores
#   hopper 10, 20, 30 and walker 40, 50, 90: mean 40, IQM = mean(20, 30, 40, 50) = 35.
CALQL_FINAL = {("hopper", 0): 10.0, ("hopper", 1): 20.0, ("hopper", 2): 30.0}
CALQL_FINAL |= {("walker", 0): 40.0, ("walker", 1): 50.0, ("walker", 2): 90.0}


def run_spec(name: str, task: str, seed: int) -> dict:
    if name == "wsrl":
        return dict(before=50.0, dip_score=30.0, final=80.0, episodes=[60.0, 40.0], drift=0.5)
    return dict(
        before=40.0,
        dip_score=40.0,
        final=CALQL_FINAL[(task, seed)],
        episodes=[100.0],
        drift=float(seed + 1),
    )


def write_run(
    run_dir: Path, name: str, task: str, seed: int, *, summary: bool = True, **spec
) -> Path:
    """A run directory in the runner's format: offline phase, warm-up, online phase."""
    spec = spec or run_spec(name, task, seed)
    run_dir.mkdir(parents=True)
    run = {
        "name": name,
        "task": task,
        "seed": seed,
        "score_unit": "normalized",
        "phases": [
            {"name": "pretrain", "kind": "offline", "start_step": SWITCH, "end_step": SWITCH},
            {"name": "warmup", "kind": "warmup", "start_step": SWITCH, "end_step": 1200},
            {"name": "finetune", "kind": "online", "start_step": 1200, "end_step": END},
        ],
        "switch_step": SWITCH,
        "config": {"ignored": True},
    }
    (run_dir / "run.json").write_text(json.dumps(run))

    def ev(phase, idx, step, update, score, q=None):
        return dict(
            kind="eval", phase=phase, phase_index=idx, env_step=step, update=update,
            score=score, return_mean=score * 10, return_std=1.0, q_probe=q, time_s=1.0,
        )  # fmt: skip

    records = [
        ev("pretrain", 0, SWITCH, 500, spec["before"] - 25.0, q=1.0),
        {"kind": "train", "update": 800, "loss": 0.1},
        ev("pretrain", 0, SWITCH, 1000, spec["before"], q=2.5),
        ev("finetune", 2, 1800, 1600, spec["dip_score"]),  # in the dip window (<= 2000)
        ev("finetune", 2, 3000, 2800, 95.0 if name == "wsrl" else spec["final"]),
        ev("finetune", 2, END, 4800, spec["final"]),
    ]
    for i, score in enumerate(spec["episodes"]):
        records.append(dict(kind="episode", env_step=1300 + 100 * i, score=score, phase="finetune"))
    with open(run_dir / "metrics.jsonl", "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    if summary:
        s = {
            "name": name, "task": task, "seed": seed, "score_unit": "normalized",
            "pretrain_score": spec["before"], "dip": spec["before"] - spec["dip_score"],
            "dip_score": spec["dip_score"], "final_score": spec["final"],
            "regret": float(np.mean([1 - e / 100 for e in spec["episodes"]])),
            "improvement": spec["final"] - spec["before"], "q_at_switch": 2.5,
            "q_drift": spec["drift"], "switch_step": SWITCH, "total_env_steps": END,
            "total_updates": 4800, "wall_time_s": 12.0,
        }  # fmt: skip
        (run_dir / "summary.json").write_text(json.dumps(s))
    return run_dir


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """2 recipes x 2 tasks x 3 seeds, two levels down: sweep/<recipe>/<task>_s<seed>/."""
    root = tmp_path_factory.mktemp("sweep")
    for name in ("wsrl", "calql"):
        for task in TASKS:
            for seed in SEEDS:
                write_run(root / name / f"{task}_s{seed}", name, task, seed)
    return root


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, write_report([sweep], out, reps=500)


def test_sweep_folder_expands_to_all_runs(sweep):
    runs = load_runs([sweep])
    assert len(runs) == 12
    assert {(r.name, r.task, r.seed) for r in runs} == {
        (n, t, s) for n in ("wsrl", "calql") for t in TASKS for s in SEEDS
    }
    # one level down, a run dir given directly, and duplicates collapse
    assert len(load_runs([sweep / "wsrl"])) == 6
    one = sweep / "calql" / "hopper_s1"
    assert len(load_runs([one, one / "run.json", sweep / "calql"])) == 6
    r = load_runs([one])[0]
    assert r.info["config"] == {"ignored": True}
    assert len(r.evals) == 5 and len(r.episodes) == 1  # train records dropped


def test_sweep_three_levels_deep_is_found_and_four_is_not(tmp_path):
    write_run(tmp_path / "offline" / "hopper-medium" / "iql" / "seed_0", "iql", "hopper", 0)
    assert [r.name for r in load_runs([tmp_path / "offline"])] == ["iql"]
    with pytest.raises(HybridRLError, match="no run directory"):
        load_runs([tmp_path])


def test_summary_rows_hand_values(sweep):
    rows = {r["recipe"]: r for r in summarize(load_runs([sweep]), reps=500)}
    assert list(rows) == ["calql", "wsrl"]
    w = rows["wsrl"]
    assert w["n_runs"] == 6 and w["tasks"] == ["hopper", "walker"] and w["seeds"] == [0, 1, 2]
    for metric, value in [
        ("pretrain_score", 50.0), ("dip", 20.0), ("final_score", 80.0), ("regret", 0.5),
        ("improvement", 30.0),
    ]:  # fmt: skip
        assert w[metric] == {"n": 6, "mean": value, "iqm": value, "ci": [value, value]}
    assert w["q_drift"] == {"n": 6, "mean": 0.5}
    c = rows["calql"]
    assert c["final_score"]["mean"] == pytest.approx(40.0)
    assert c["final_score"]["iqm"] == pytest.approx(35.0)
    lo, hi = c["final_score"]["ci"]
    assert 10.0 <= lo < 35.0 < hi <= 90.0
    assert c["dip"]["iqm"] == 0.0 and c["regret"]["iqm"] == 0.0
    assert c["q_drift"]["mean"] == pytest.approx(2.0)


def test_write_report_files_and_table(report):
    out, result = report
    names = {Path(f).name for f in result["files"]}
    assert names == {"report.md", "curves.png", "summary.png", "summary.json"}
    for png in ("curves.png", "summary.png"):
        data = (out / png).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary files left
    lines = result["table"].splitlines()
    assert lines[0].split() == [
        "recipe", "unit", "runs", "tasks", "before", "dip", "worst", "after", "regret", "q",
        "drift",
    ]  # fmt: skip
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].startswith("calql") and lines[3].startswith("wsrl")
    assert "80.0 [80.0, 80.0]" in lines[3] and "0.500 [0.500, 0.500]" in lines[3]
    assert "50.0 [50.0, 50.0]" in lines[3] and "20.0 [20.0, 20.0]" in lines[3]
    assert " 35.0 [" in lines[2]
    # the columns are aligned: every cell of a column starts at the header's offset
    start = lines[0].index("after")
    assert lines[2][start:].startswith("35.0") and lines[3][start:].startswith("80.0")
    md = (out / "report.md").read_text()
    assert (
        "| wsrl | norm | 6 | 2 | 50.0 [50.0, 50.0] | 20.0 [20.0, 20.0] | 30.0 [30.0, 30.0] "
        "| 80.0 [80.0, 80.0] | 0.500 [0.500, 0.500] | 0.5 |"
    ) in md
    assert "![evaluation curves](curves.png)" in md and md.count("| calql | hopper |") == 3
    rows = json.loads((out / "summary.json").read_text())
    assert [r["recipe"] for r in rows] == ["calql", "wsrl"]
    assert rows[1]["final_score"]["ci"] == [80.0, 80.0]
    assert rows == result["rows"]
    assert "| hopper | 20.0 ± 8.2 (3) | 80.0 ± 0.0 (3) |" in md
    assert result["per_task"].splitlines()[0].split() == ["task", "calql", "wsrl"]


def test_format_table_none_cells_and_bad_format():
    row = {
        "recipe": "bc",
        "score_unit": "return",
        "n_runs": 1,
        "tasks": ["t"],
        "final_score": {"n": 1, "mean": 3.0, "iqm": 3.0, "ci": [3.0, 3.0]},
        "pretrain_score": {"n": 0, "mean": None, "iqm": None, "ci": None},
        "q_drift": {"n": 0, "mean": None},
    }
    text = format_table([row])
    assert text.splitlines()[2].split() == [
        "bc", "return", "1", "1", "-", "-", "-", "3.0", "[3.0,", "3.0]", "-", "-"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="fmt"):
        format_table([row], fmt="html")


def test_missing_summary_is_recomputed(tmp_path):
    with_summary = load_run(write_run(tmp_path / "a", "wsrl", "hopper", 0))
    without = load_run(write_run(tmp_path / "b", "wsrl", "hopper", 0, summary=False))
    for key in ("pretrain_score", "dip", "dip_score", "final_score", "regret", "improvement"):
        assert without.summary[key] == pytest.approx(with_summary.summary[key]), key
    assert without.summary["q_at_switch"] == 2.5  # probe of the last offline eval
    assert without.summary["q_drift"] is None  # only the runner defines it
    assert without.summary["total_env_steps"] == END
    # a damaged summary.json is treated as missing
    (tmp_path / "b" / "summary.json").write_text('{"final_score": 1')
    assert load_run(tmp_path / "b").summary["final_score"] == 80.0
    # a summary with some keys: the runner's values win, the rest is recomputed
    (tmp_path / "b" / "summary.json").write_text('{"final_score": 1.0}')
    s = load_run(tmp_path / "b").summary
    assert s["final_score"] == 1.0 and s["pretrain_score"] == 50.0


def test_warmup_episodes_count_towards_regret(tmp_path):
    d = write_run(tmp_path / "r", "wsrl", "hopper", 0, summary=False)
    with open(d / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(dict(kind="episode", env_step=1100, score=0.0, phase="warmup")))
        fh.write("\n")
        fh.write(json.dumps(dict(kind="episode", env_step=SWITCH, score=0.0, phase="pretrain")))
        fh.write("\n")
    # online 60, 40 and warm-up 0 count; the offline phase's record does not
    assert load_run(d).summary["regret"] == pytest.approx((0.4 + 0.6 + 1.0) / 3)


def test_bad_run_json_names_the_file(tmp_path):
    d = write_run(tmp_path / "r", "wsrl", "hopper", 0)
    (d / "run.json").write_text("{not json")
    with pytest.raises(HybridRLError, match="not readable JSON") as info:
        load_runs([d])
    assert str(d / "run.json") in str(info.value)
    (d / "run.json").write_text(json.dumps({"task": "hopper"}))
    with pytest.raises(HybridRLError, match="'name'") as info:
        load_run(d)
    assert str(d / "run.json") in str(info.value)
    (d / "run.json").write_text(json.dumps({"name": "x", "task": "t", "score_unit": "percent"}))
    with pytest.raises(HybridRLError, match="score_unit"):
        load_run(d)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HybridRLError, match=r"run\.json") as info:
        load_run(empty)
    assert str(empty / "run.json") in str(info.value)
    with pytest.raises(HybridRLError, match="no run directory") as info:
        load_runs([empty])
    assert str(empty) in str(info.value)
    with pytest.raises(HybridRLError, match="no such"):
        load_runs([tmp_path / "nowhere"])


def test_metrics_jsonl_truncated_tail_is_tolerated_but_not_garbage(tmp_path):
    d = write_run(tmp_path / "r", "wsrl", "hopper", 0)
    with open(d / "metrics.jsonl", "a") as fh:
        fh.write('{"kind": "eval", "env_step": 60')  # crash mid-write
    assert len(load_run(d).evals) == 5
    lines = (d / "metrics.jsonl").read_text().splitlines()
    lines.insert(1, "garbage")
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(HybridRLError, match="line 2") as info:
        load_run(d)
    assert str(d / "metrics.jsonl") in str(info.value)


def test_offline_only_run_uses_updates(tmp_path):
    d = tmp_path / "iql"
    d.mkdir()
    run = {
        "name": "iql", "task": "hopper", "seed": 0, "score_unit": "normalized",
        "phases": [{"name": "offline", "kind": "offline", "start_step": 0, "end_step": 0}],
        "switch_step": None,
    }  # fmt: skip
    (d / "run.json").write_text(json.dumps(run))
    evals = [
        dict(kind="eval", phase="offline", phase_index=0, env_step=0, update=u, score=s)
        for u, s in [(1000, 20.0), (2000, 45.0), (3000, 40.0)]
    ]
    (d / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    r = load_run(d)
    assert r.offline_only
    x, y = r.curve()
    np.testing.assert_array_equal(x, [1000, 2000, 3000])
    np.testing.assert_array_equal(y, [20.0, 45.0, 40.0])
    assert r.summary["final_score"] == 40.0 and r.summary["pretrain_score"] is None
    assert r.summary["dip"] is None and r.summary["regret"] is None
    png = plot_curves([r], tmp_path / "c.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_o2o_curve_collapses_offline_evals_onto_the_switch(sweep):
    r = load_run(sweep / "wsrl" / "hopper_s0")
    x, y = r.curve()
    np.testing.assert_array_equal(x, [SWITCH, 1800, 3000, END])
    np.testing.assert_array_equal(y, [50.0, 30.0, 95.0, 80.0])  # last offline eval kept


def test_mean_curve_interpolates_onto_the_common_range():
    from hybridrl.evaluation.report import _mean_curve

    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = (np.array([5.0, 15.0, 30.0]), np.array([10.0, 10.0, 10.0]))
    grid, mean, half = _mean_curve([a, b])
    # overlap [5, 20]; union of steps inside it; a interpolated: 5 -> 5, 15 -> 15
    np.testing.assert_array_equal(grid, [5.0, 10.0, 15.0, 20.0])
    np.testing.assert_allclose(mean, [7.5, 10.0, 12.5, 15.0])
    # two seeds: 1.96 * std(ddof=1) / sqrt(2) = 1.96 * |a - b| / 2
    np.testing.assert_allclose(half, 1.96 * np.abs([5.0 - 10, 0, 15.0 - 10, 20.0 - 10]) / 2)
    _, _, half1 = _mean_curve([a])
    assert not half1.any()  # one seed: no band


def test_per_task_table_hand_values(sweep):
    runs = load_runs([sweep])
    md = per_task_table(runs).splitlines()
    assert md[0] == "| task | calql | wsrl |" and md[1] == "|---|---|---|"
    # calql hopper 10, 20, 30: mean 20, std sqrt(200/3) = 8.16; walker 40, 50, 90: 60, 21.6
    assert md[2] == "| hopper | 20.0 ± 8.2 (3) | 80.0 ± 0.0 (3) |"
    assert md[3] == "| walker | 60.0 ± 21.6 (3) | 80.0 ± 0.0 (3) |"
    only_wsrl = [r for r in runs if r.name == "wsrl" or r.task == "walker"]
    text = per_task_table(only_wsrl, fmt="text").splitlines()
    assert text[1].split() == ["hopper", "-", "80.0", "±", "0.0", "(3)"]
    assert (
        per_task_table(runs, "dip").splitlines()[2] == "| hopper | 0.0 ± 0.0 (3) | 20.0 ± 0.0 (3) |"
    )
    with pytest.raises(ValueError, match="fmt must be"):
        per_task_table(runs, fmt="html")
