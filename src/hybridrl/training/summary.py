"""The run summary (offline-to-online metrics with the Q probe), and the evaluation the
dip window needs. `hybridrl.evaluation.stats` holds the metric definitions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hybridrl.evaluation.stats import dip_window, o2o_metrics
from hybridrl.training.context import RunSettings
from hybridrl.training.phases import Online, Phase


def run_summary(
    records: list[dict[str, Any]],
    *,
    switch_step: int | None,
    end_step: int,
    dip_fraction: float,
    normalized: bool,
    finetune_step: int | None,
) -> dict[str, Any]:
    """`o2o_metrics` of a run's eval and episode records, with ``q_at_switch`` (the Q probe at
    the last evaluation before the switch) and ``q_drift`` (its change at the last evaluation
    in the dip window). Episodes cut by the checkpoint schedule do not count for regret."""
    evals = [r for r in records if r["kind"] == "eval"]
    episodes = [
        r["score"]
        for r in records
        if r["kind"] == "episode" and not r.get("cut") and r["env_step"] > 0
    ]
    metrics: dict[str, Any] = o2o_metrics(
        [(r["env_step"], r["score"]) for r in evals],
        switch_step,
        end_step,
        episodes,
        dip_fraction=dip_fraction,
        normalized=normalized,
        finetune_step=finetune_step,
    )
    q_switch, q_drift = None, None
    if switch_step is not None:
        before = [r for r in evals if r["env_step"] <= switch_step]
        start, window_end = dip_window(switch_step, end_step, dip_fraction, finetune_step)
        after = [r for r in evals if start < r["env_step"] <= window_end]
        if before and before[-1]["q_probe"] is not None:
            q_switch = before[-1]["q_probe"]
            if after and after[-1]["q_probe"] is not None:
                q_drift = after[-1]["q_probe"] - q_switch
    return {**metrics, "q_at_switch": q_switch, "q_drift": q_drift}


def dip_evaluation_step(
    phases: Sequence[Phase],
    bounds: Sequence[tuple[int, int]],
    switch_step: int,
    finetune_step: int | None,
    settings: RunSettings,
) -> tuple[int | None, bool]:
    """Where the dip window gets its evaluation: ``(extra, possible)``.

    The runner evaluates an online phase ``(a, b]`` at the first env step past every multiple
    of ``eval_interval`` and at ``b``, but only once updates have changed the policy, i.e. at
    steps ``e`` with ``e - a > update_after``. When none of those lies in the dip window,
    ``extra`` is one more evaluation at the window's end (None when one is there already);
    ``possible`` is False when no evaluation can lie in the window at all.
    """
    n, every = settings.num_envs, settings.eval_interval
    end_step = bounds[-1][1] if bounds else 0
    start, end = dip_window(switch_step, end_step, settings.dip_fraction, finetune_step)
    for p, (a, b) in zip(phases, bounds, strict=True):
        if not (isinstance(p, Online) and p.updates_per_step > 0 and b > a):
            continue
        first = math.ceil((a + 1) / every) * every
        regular = {math.ceil(m / n) * n for m in (b, *range(first, b, every))}
        if any(start < e <= end and e - a > p.update_after for e in regular):
            return None, True
    for p, (a, b) in zip(phases, bounds, strict=True):
        if isinstance(p, Online) and a == finetune_step:
            last = min(int(end // n) * n, b)
            return (last, True) if last - a > p.update_after else (None, False)
    return None, False
