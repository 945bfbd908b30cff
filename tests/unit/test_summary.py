"""The run summary computed once (`hybridrl.evaluation.summary.run_summary`): the runner writes
it, `hybridrl report` recomputes the same values for a run without ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hybridrl.evaluation.report import load_run
from hybridrl.evaluation.summary import SUMMARY_KEYS, run_summary

SWITCH, END = 100, 500
INFO: dict[str, Any] = {
    "name": "wsrl",
    "task": "hopper",
    "seed": 3,
    "score_unit": "normalized",
    "switch_step": SWITCH,
    "phases": [
        {"name": "pre", "kind": "offline", "start_step": SWITCH, "end_step": SWITCH},
        {"name": "fine", "kind": "online", "start_step": SWITCH, "end_step": END},
    ],
}


def _eval(step: int, update: int, score: float, q: float | None = None) -> dict[str, Any]:
    return {"kind": "eval", "env_step": step, "update": update, "score": score, "q_probe": q,
            "time_s": step / 100}  # fmt: skip


RECORDS = [
    _eval(SWITCH, 10, 40.0, q=1.0),
    _eval(SWITCH, 20, 50.0, q=2.0),  # the pre-trained policy: the last eval at the switch
    _eval(150, 30, 20.0, q=7.0),
    _eval(200, 40, 30.0, q=5.0),  # window (100, 100 + 0.25 * 400 = 200]: last probe 5
    _eval(300, 50, 10.0),
    _eval(END, 60, 90.0),
    {"kind": "episode", "phase": "fine", "env_step": 160, "score": 20.0, "cut": False},
    {"kind": "episode", "phase": "fine", "env_step": 170, "score": 0.0, "cut": True},  # cut
    {"kind": "episode", "phase": "pre", "env_step": SWITCH, "score": 0.0, "cut": False},
    {"kind": "train", "update": 30, "loss": 1.0},
]


def _write(run_dir: Path, info: dict[str, Any], records: list[dict[str, Any]]) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(info))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def test_hand_computed_summary():
    s = run_summary(INFO, RECORDS)
    assert list(s) == ["name", "task", "seed", "score_unit", "pretrain_score", "dip_score",
                       "dip", "worst_score", "worst_step", "final_score", "regret",
                       "improvement", *SUMMARY_KEYS[8:]]  # fmt: skip
    assert (s["pretrain_score"], s["dip_score"], s["dip"]) == (50.0, 20.0, 30.0)
    assert (s["worst_score"], s["worst_step"], s["final_score"]) == (10.0, 300, 90.0)
    assert s["regret"] == pytest.approx(0.8)  # one whole online episode, score 20
    assert (s["q_at_switch"], s["q_drift"]) == (2.0, 3.0)
    assert (s["total_env_steps"], s["total_updates"], s["wall_time_s"]) == (END, 60, 5.0)
    totals = {"total_env_steps": 1, "total_updates": 2, "wall_time_s": 3.0}
    assert run_summary(INFO, RECORDS, totals=totals) == s | totals
    # the dip window follows the run's setting, read from run.json when not given
    wide = INFO | {"fingerprint": {"settings": {"dip_fraction": 0.5}}}  # window ends at 300
    assert run_summary(wide, RECORDS)["dip_score"] == 10.0
    assert run_summary(wide, RECORDS, dip_fraction=0.25)["dip_score"] == 20.0


def test_report_recomputes_what_the_runner_writes(tmp_path):
    """A run without summary.json: `load_run` gives run_summary's values, Q drift included."""
    d = _write(tmp_path / "run", INFO, RECORDS)
    expected = run_summary(INFO, RECORDS)
    recomputed = load_run(d).summary
    assert {k: recomputed[k] for k in expected} == expected
    assert recomputed["q_drift"] == 3.0


def test_on_policy_episodes_count_and_the_curve_is_in_env_steps(tmp_path):
    info = {
        "name": "ppo", "task": "cartpole", "seed": 0, "score_unit": "normalized",
        "switch_step": None,
        "phases": [{"name": "online", "kind": "on_policy", "start_step": 0, "end_step": 64}],
    }  # fmt: skip
    records = [
        _eval(32, 1, 10.0),
        _eval(64, 2, 30.0),
        {"kind": "episode", "phase": "online", "env_step": 20, "score": 50.0, "cut": False},
    ]
    run = load_run(_write(tmp_path / "ppo", info, records))
    assert not run.offline_only and run.x_key == "env_step"
    assert run.summary["regret"] == pytest.approx(0.5) and run.summary["final_score"] == 30.0
    assert run.summary["pretrain_score"] is None and run.summary["total_env_steps"] == 64
