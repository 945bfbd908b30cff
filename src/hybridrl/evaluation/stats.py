"""Aggregate statistics for RL results: IQM, stratified bootstrap intervals, O2O metrics.

Aggregation follows Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice" (NeurIPS 2021): report the interquartile mean (IQM) over all runs of all tasks with a
95% percentile interval from a bootstrap that resamples runs *within* each task (stratified).

The offline-to-online (O2O) metrics of `o2o_metrics` follow CORL (Tarasov et al., "CORL:
Research-oriented Deep Offline Reinforcement Learning Library", NeurIPS 2023 D&B) and WSRL
(Zhou et al., "Efficient Online Reinforcement Learning Fine-Tuning Need Not Retain Offline
Data", 2024). Numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["iqm", "o2o_metrics", "stratified_bootstrap_ci"]


def iqm(x: ArrayLike, axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50% of the values.

    After sorting the ``n`` values along ``axis`` (all values when ``axis`` is None),
    ``k = int(0.25 * n)`` values are cut from each end and the rest averaged::

        IQM(x) = mean(x_(k+1), ..., x_(n-k))        x_(i): i-th smallest

    This is ``scipy.stats.trim_mean(x, 0.25)``, the estimator rliable uses; for ``n < 4``
    nothing is cut and it is the plain mean. Returns a float for a full reduction, else an
    array with ``axis`` removed.
    """
    a = np.asarray(x, dtype=np.float64)
    if axis is None:
        a, axis = a.ravel(), 0
    a = np.moveaxis(a, axis, -1)
    n = a.shape[-1]
    if n == 0:
        raise ValueError("iqm of an empty array")
    k = int(0.25 * n)
    out = np.sort(a, axis=-1)[..., k : n - k].mean(axis=-1)
    return float(out) if out.ndim == 0 else out


def _strata(scores: Mapping[str, ArrayLike] | ArrayLike) -> list[np.ndarray]:
    """Per-task 1-D arrays of run scores, in a fixed order (sorted task names)."""
    if isinstance(scores, Mapping):
        strata = [np.asarray(scores[k], dtype=np.float64).ravel() for k in sorted(scores)]
    else:
        a = np.asarray(scores, dtype=np.float64)
        if a.ndim == 1:
            a = a[:, None]  # one task
        if a.ndim != 2:
            raise ValueError(f"scores must be (runs, tasks); got shape {a.shape}")
        strata = [a[:, j] for j in range(a.shape[1])]
    if not strata:
        raise ValueError("no tasks in scores")
    if any(s.size == 0 for s in strata):
        raise ValueError("every task needs at least one run")
    return strata


def stratified_bootstrap_ci(
    scores: Mapping[str, ArrayLike] | ArrayLike,
    statistic: Callable[..., Any] = iqm,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Point estimate and stratified-bootstrap percentile interval of ``statistic``.

    ``scores`` maps each task (stratum) to its per-run values, or is a ``(runs, tasks)`` array
    as in rliable (a 1-D array is one task). The point is ``statistic`` of all runs pooled.
    Each replicate draws, for every task with ``n_t`` runs, ``n_t`` runs with replacement
    from that task only, pools the draws and applies ``statistic``; the interval is the
    ``(1 - confidence)/2`` and ``(1 + confidence)/2`` percentiles of the replicates.
    Resampling within tasks keeps each task's weight fixed, so the interval reflects run-to-run
    variability rather than which tasks happened to be drawn.

    ``statistic(x, axis=-1)`` must reduce along ``axis`` (`iqm`, ``np.mean``, ``np.median``):
    all replicates are computed in one vectorized call. Deterministic for a given ``seed``
    (tasks are visited in sorted-name order, so dict insertion order does not matter). With
    one run per task every replicate equals the data and the interval collapses to the point.
    Returns ``(point, low, high)``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1; got {reps}")
    strata = _strata(scores)
    point = float(statistic(np.concatenate(strata), axis=-1))
    rng = np.random.default_rng(seed)
    # One (reps, n_t) index draw per task; the loop is over tasks, never over replicates.
    samples = np.concatenate(
        [s[rng.integers(0, s.size, size=(reps, s.size))] for s in strata], axis=1
    )
    replicates = np.asarray(statistic(samples, axis=-1), dtype=np.float64)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return point, float(low), float(high)


def finetune_step(phases: Sequence[Mapping[str, Any]], switch_step: int | None) -> int | None:
    """Where updates resume after the switch: the start of the first non-empty online phase
    at or after it. ``phases`` are ``{"kind", "start_step", "end_step"}`` dicts, as the
    runner writes them to ``run.json``."""
    if switch_step is None:
        return None
    for p in phases:
        start, end = p.get("start_step"), p.get("end_step")
        if p.get("kind") != "online" or start is None or end is None:
            continue
        if int(end) > int(start) >= switch_step:
            return int(start)
    return None


def dip_window(
    switch_step: int, end_step: int, dip_fraction: float, finetune_step: int | None = None
) -> tuple[int, float]:
    """The ``(start, end]`` env steps of the early fine-tuning window the dip is measured in.

    It opens at the switch and closes ``dip_fraction`` of the way from ``finetune_step`` (where
    updates resume; the switch itself when None) to the end: a warm-up that only collects
    data leaves the policy as it was, so the window must reach past it into fine-tuning.
    """
    start = switch_step if finetune_step is None else finetune_step
    return switch_step, start + dip_fraction * (end_step - start)


def o2o_metrics(
    evaluations: Sequence[tuple[int, float]],
    switch_step: int | None,
    end_step: int,
    online_episode_scores: Sequence[float] = (),
    dip_fraction: float = 0.25,
    normalized: bool = True,
    finetune_step: int | None = None,
) -> dict[str, float | int | None]:
    """Offline-to-online metrics of one run from its evaluation curve.

    ``evaluations`` are ``(env_step, score)`` pairs (score: D4RL normalized score in [0, 100]
    when ``normalized``, else the raw return); evaluations at the same step keep their order,
    so the offline evaluations, which all sit at ``switch_step`` (offline training takes no env
    steps), count in the order they were made. With ``s = switch_step``, ``T = end_step``:

    * ``pretrain_score``: score of the last evaluation with ``step <= s`` (the pre-trained
      policy).
    * ``dip_score``: ``min`` of the scores with ``s < step <= u + dip_fraction * (T - u)``,
      the early fine-tuning window where policies often collapse (WSRL, Zhou et al. 2024);
      ``u = finetune_step`` is where updates resume after the switch (the end of a warm-up
      that only collects, as in WSRL), ``u = s`` by default (see `dip_window`).
    * ``dip = pretrain_score - dip_score``: positive is a drop after the switch; negative
      means the policy improved right away (the sign is kept, not clipped).
    * ``worst_score``, ``worst_step``: the lowest score after the switch (``step > s``,
      anywhere up to ``T``) and the env step of its first occurrence, so that a collapse later
      than the dip window is not hidden by a small dip.
    * ``final_score``: score of the last evaluation.
    * ``improvement = final_score - pretrain_score``.
    * ``regret = mean_i (1 - score_i / 100)`` over the online episodes (cumulative regret as
      in CORL, Tarasov et al. 2023; on AntMaze the normalized score is 100 x success, so this
      is CORL's ``1 - success rate``). Only defined for normalized scores.

    Each value is None when undefined (no switch, no evaluation in the window, no online
    episodes, ...).
    """
    evals = sorted(((int(s), float(v)) for s, v in evaluations), key=lambda e: e[0])
    final = evals[-1][1] if evals else None
    pretrain = dip_score = worst = worst_step = None
    if switch_step is not None:
        after = [(s, v) for s, v in evals if s > switch_step]
        if after:
            worst_step, worst = min(after, key=lambda e: e[1])  # min keeps the first of ties
        before = [v for s, v in evals if s <= switch_step]
        pretrain = before[-1] if before else None
        start, horizon = dip_window(switch_step, end_step, dip_fraction, finetune_step)
        window = [v for s, v in evals if start < s <= horizon]
        dip_score = min(window) if window else None
    regret = None
    if normalized and len(online_episode_scores) > 0:
        regret = float(np.mean(1.0 - np.asarray(online_episode_scores, np.float64) / 100.0))
    return {
        "pretrain_score": pretrain,
        "dip_score": dip_score,
        "dip": None if pretrain is None or dip_score is None else pretrain - dip_score,
        "worst_score": worst,
        "worst_step": worst_step,
        "final_score": final,
        "regret": regret,
        "improvement": None if pretrain is None or final is None else final - pretrain,
    }
