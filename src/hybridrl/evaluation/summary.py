"""The run summary: one function from a run's ``run.json`` and ``metrics.jsonl`` records to its
``summary.json``, shared by the runner (which writes it) and `hybridrl report` (which
recomputes it for a run that crashed before writing it). The metric definitions (pretrain
score, dip, worst score, final score, regret, improvement) are `hybridrl.evaluation.stats`'s
`o2o_metrics`; this module decides which records feed them.

Why one function: the runner and the report used to compute the summary separately and
disagreed at the edges (on-policy runs counted as offline-only by the report, the Q drift
missing from recomputed summaries). Records are plain dicts as the runner logs them
(`hybridrl.training.context.PhaseContext.log_episode`, the evaluator's ``eval`` records);
the run info is ``run.json``'s object (``phases`` with ``name``, ``kind``, ``start_step``,
``end_step``; ``switch_step``; ``score_unit``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hybridrl.evaluation.stats import dip_window, finetune_step, o2o_metrics

__all__ = [
    "ENV_PHASE_KINDS",
    "SUMMARY_KEYS",
    "end_step",
    "is_offline_only",
    "record_score",
    "run_summary",
]

ENV_PHASE_KINDS = ("warmup", "online", "on_policy")
"""Phase kinds that take env steps (their episodes count for regret)."""

SUMMARY_KEYS = (
    "pretrain_score",
    "dip",
    "dip_score",
    "worst_score",
    "worst_step",
    "final_score",
    "regret",
    "improvement",
    "q_at_switch",
    "q_drift",
    "switch_step",
    "total_env_steps",
    "total_updates",
    "wall_time_s",
)
"""The metric keys of ``summary.json`` (besides ``name``, ``task``, ``seed``, ``score_unit``)."""

DEFAULT_DIP_FRACTION = 0.25


def record_score(record: Mapping[str, Any]) -> float:
    """An eval or episode record's score; the raw return when it has no score (a run without
    reference returns), NaN when it has neither."""
    score = record.get("score")
    if score is None:
        score = record.get("return_mean", record.get("return"))
    return math.nan if score is None else float(score)


def is_offline_only(phases: Sequence[Mapping[str, Any]]) -> bool:
    """True when no phase takes env steps: the curve is then measured in updates."""
    return not any(p.get("kind") in ENV_PHASE_KINDS for p in phases)


def end_step(phases: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> int:
    """The run's last env step: the largest phase end, else the largest step in ``records``."""
    ends = [int(p["end_step"]) for p in phases if p.get("end_step") is not None]
    if ends:
        return max(ends)
    return max((int(r.get("env_step") or 0) for r in records), default=0)


def _recorded_dip_fraction(info: Mapping[str, Any]) -> float:
    settings = (info.get("fingerprint") or {}).get("settings") or {}
    value = settings.get("dip_fraction")
    return DEFAULT_DIP_FRACTION if value is None else float(value)


def run_summary(
    info: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    *,
    dip_fraction: float | None = None,
    totals: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``summary.json`` object of a run.

    Args:
        info: ``run.json``'s object (``name``, ``task``, ``seed``, ``score_unit``, ``phases``,
            ``switch_step``).
        records: ``metrics.jsonl``'s records; only ``eval`` and ``episode`` ones are read.
        dip_fraction: the dip window's share of fine-tuning (`dip_window`); None reads the
            run's setting from ``info['fingerprint']['settings']`` (0.25 when absent).
        totals: ``total_env_steps``, ``total_updates`` and ``wall_time_s`` as the runner
            counted them; None derives them from the records (a run that crashed before
            writing its summary): the last phase end, the largest update and eval time.

    Returns ``name``, ``task``, ``seed``, ``score_unit``, the `o2o_metrics` values,
    ``q_at_switch`` (the Q probe of the last evaluation at or before the switch, i.e. the
    pre-trained policy), ``q_drift`` (its change at the last evaluation of the dip window;
    None when either probe is missing), ``switch_step`` and the totals.

    Which records count: evaluations give the curve, over env steps (over updates for a run
    with no env-step phase, which has no switch). Episodes count for regret when not ``cut``
    (ended by the checkpoint schedule, not by the env) and logged by a phase that takes env
    steps (`ENV_PHASE_KINDS`), or by an unknown phase of a run with a switch.
    """
    phases: list[Mapping[str, Any]] = list(info.get("phases") or [])
    recorded = info.get("switch_step")
    recorded = None if recorded is None else int(recorded)
    offline_only = is_offline_only(phases)
    switch = None if offline_only else recorded
    x_key = "update" if offline_only else "env_step"
    kind_of = {p.get("name"): p.get("kind") for p in phases}
    evals = [r for r in records if r.get("kind") == "eval"]
    episodes = [
        record_score(r)
        for r in records
        if r.get("kind") == "episode"
        and r.get("cut") is not True
        and (
            kind_of.get(r.get("phase")) in ENV_PHASE_KINDS
            or (r.get("phase") not in kind_of and switch is not None)
        )
    ]
    last = end_step(phases, records)
    fraction = _recorded_dip_fraction(info) if dip_fraction is None else dip_fraction
    start = finetune_step(phases, switch)
    metrics: dict[str, Any] = o2o_metrics(
        [(int(r.get(x_key) or 0), record_score(r)) for r in evals],
        switch,
        last,
        episodes,
        dip_fraction=fraction,
        normalized=info.get("score_unit") == "normalized",
        finetune_step=start,
    )
    q_switch, q_drift = None, None
    if switch is not None:
        before = [r for r in evals if int(r.get("env_step") or 0) <= switch]
        window_start, window_end = dip_window(switch, last, fraction, start)
        after = [r for r in evals if window_start < int(r.get("env_step") or 0) <= window_end]
        if before and before[-1].get("q_probe") is not None:
            q_switch = float(before[-1]["q_probe"])
            if after and after[-1].get("q_probe") is not None:
                q_drift = float(after[-1]["q_probe"]) - q_switch
    if totals is None:
        totals = {
            "total_env_steps": last,
            "total_updates": max((int(r.get("update") or 0) for r in evals), default=None),
            "wall_time_s": max((float(r.get("time_s") or 0.0) for r in evals), default=None),
        }
    return {
        "name": info.get("name"),
        "task": info.get("task"),
        "seed": info.get("seed"),
        "score_unit": info.get("score_unit"),
        **metrics,
        "q_at_switch": q_switch,
        "q_drift": q_drift,
        "switch_step": recorded,
        "total_env_steps": totals["total_env_steps"],
        "total_updates": totals["total_updates"],
        "wall_time_s": totals["wall_time_s"],
    }
