"""`hybridrl demo`: every step runs at a tiny budget (default tier); the shipped demo's promise
(fine-tuning beats pretraining) is checked at full budget in the slow tier."""

from __future__ import annotations

import pytest

from hybridrl.demo import DEMO_RECIPES, run_demo


def test_demo_runs_every_step_at_a_tiny_budget(tmp_path):
    lines: list[str] = []
    out = run_demo(
        tmp_path,
        steps=1000,
        budget={"offline_updates": 20, "warmup_steps": 200, "online_steps": 200},
        progress=False,
        echo=lines.append,
    )
    assert set(out["summaries"]) == set(DEMO_RECIPES)
    for summary in out["summaries"].values():
        assert summary["total_env_steps"] == 400  # the same env budget for every recipe
        assert summary["pretrain_score"] is not None and summary["final_score"] is not None
    assert "wsrl" in out["table"] and "iql_finetune" in out["table"]
    assert (tmp_path / "report" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert any("identical=True" in line for line in lines)


@pytest.mark.slow
def test_shipped_demo_fine_tuning_beats_pretraining(tmp_path):
    out = run_demo(tmp_path, progress=False, echo=lambda _: None)
    wsrl = out["summaries"]["wsrl"]
    assert wsrl["final_score"] > wsrl["pretrain_score"] + 20
