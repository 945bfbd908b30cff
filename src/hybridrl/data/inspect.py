"""Inspect a dataset: sizes, episode statistics, per-dimension ranges and quality measures.

Besides plain statistics, `inspect_dataset` reports the two dataset measures of Schweighofer
et al., "A Dataset Perspective on Offline Reinforcement Learning" (CoLLAs 2022):

* **TQ** (trajectory quality), how good the behaviour in the data is::

      TQ = (mean episode return of the dataset - R_random) / (R_expert - R_random)

  with the return of a random policy and of the best (expert) policy as references. TQ is the
  D4RL normalized score divided by 100; by default the references are the metadata's
  ``ref_min_score`` / ``ref_max_score``.

* **SACo** (state-action coverage), how much of the state-action space the data explores::

      SACo = u(D) / u(D_ref)

  where ``u`` counts the unique state-action pairs after discretising every dimension of
  ``[s, a]`` into equal-width bins, and ``D_ref`` is a reference dataset (in the paper the
  replay buffer of an online agent). See `unique_state_action_pairs` for the grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridrl.data import transitions as tr
from hybridrl.data.dataset import Dataset
from hybridrl.types import DatasetError

# Above this many dimensions per field (e.g. images) only whole-field statistics are reported.
MAX_PER_DIM_STATS = 1024

_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) for mixing


# ------------------------------------------------------------------------------- SACo
def _flat(x: np.ndarray) -> np.ndarray:
    """(N, *shape) -> (N, prod(shape)); also for N = 0, where reshape(N, -1) fails."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


def saco_grid(
    ds: Dataset, ranges: Sequence[Sequence[float]] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The per-dimension ranges the SACo grid spans, and where each came from.

    Columns are the flattened observation dimensions followed by the flattened action
    dimensions (one column for a discrete action). For each column the range is, in order of
    preference: the explicit ``ranges[j]`` (``"given"``); the space bound when both ends are
    finite (``"space"``); the dataset's own min/max (``"data"``). A discrete action column is
    never binned (``"discrete"``: each action is its own cell).

    Returns ``(low, high, sources)`` with ``low``/``high`` of shape (D,).
    """
    t = ds.transitions
    meta = ds.metadata
    n = len(t)
    obs = _flat(t.observations)
    discrete = meta.action_space.kind == "discrete"
    act = _flat(t.actions)
    d_obs, d_act = obs.shape[1], (1 if discrete else act.shape[1])
    dims = d_obs + d_act

    low = np.full(dims, np.nan)
    high = np.full(dims, np.nan)
    sources = [""] * dims
    space_lo = np.full(dims, -np.inf)
    space_hi = np.full(dims, np.inf)
    if meta.observation_space.kind == "box" and meta.observation_space.low is not None:
        lo, hi = meta.observation_space.low_array.ravel(), meta.observation_space.high_array.ravel()
        if lo.size == d_obs:
            space_lo[:d_obs], space_hi[:d_obs] = lo, hi
    if discrete:
        assert meta.action_space.n is not None
        space_lo[d_obs], space_hi[d_obs] = 0.0, float(meta.action_space.n - 1)
    elif meta.action_space.low is not None:
        lo, hi = meta.action_space.low_array.ravel(), meta.action_space.high_array.ravel()
        if lo.size == d_act:
            space_lo[d_obs:], space_hi[d_obs:] = lo, hi

    given = None
    if ranges is not None:
        given = np.asarray(ranges, dtype=np.float64)
        if given.shape != (dims, 2):
            raise DatasetError(
                f"SACo ranges must have shape ({dims}, 2) (one (low, high) per observation "
                f"dimension then per action dimension), got {given.shape}",
                field="ranges",
            )
        if not np.all(np.isfinite(given)) or np.any(given[:, 1] < given[:, 0]):
            raise DatasetError("SACo ranges must be finite with low <= high", field="ranges")

    for j in range(dims):
        if discrete and j == d_obs:
            low[j], high[j], sources[j] = space_lo[j], space_hi[j], "discrete"
        elif given is not None:
            low[j], high[j], sources[j] = given[j, 0], given[j, 1], "given"
        elif np.isfinite(space_lo[j]) and np.isfinite(space_hi[j]):
            low[j], high[j], sources[j] = space_lo[j], space_hi[j], "space"
        else:
            col = obs[:, j] if j < d_obs else act[:, j - d_obs]
            if n:
                low[j], high[j] = float(np.min(col)), float(np.max(col))
            else:
                low[j], high[j] = 0.0, 0.0
            sources[j] = "data"
    return low, high, sources


def _bin_codes(ds: Dataset, bins: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Integer cell index of every (row, column) of ``[s, a]``, shape (N, D)."""
    t = ds.transitions
    n = len(t)
    obs = _flat(t.observations)
    discrete = ds.metadata.action_space.kind == "discrete"
    act = _flat(t.actions)
    d_obs = obs.shape[1]
    dims = low.shape[0]
    max_code = max(bins - 1, int(high[d_obs]) if discrete else 0)
    dtype = np.uint16 if max_code < 2**16 else np.int64
    codes = np.empty((n, dims), dtype=dtype)
    for j in range(dims):  # column by column: keeps float temporaries at N values
        col = obs[:, j] if j < d_obs else act[:, j - d_obs]
        if discrete and j == d_obs:
            codes[:, j] = col
            continue
        width = high[j] - low[j]
        if width <= 0:
            codes[:, j] = 0
            continue
        # Equal-width cells [low + k w/bins, low + (k+1) w/bins); the upper end and values
        # outside the range fall into the edge cells.
        cell = np.floor((col.astype(np.float64) - low[j]) * (bins / width))
        codes[:, j] = np.clip(cell, 0, bins - 1)
    return codes


def _count_unique_rows(codes: np.ndarray) -> int:
    """Exact number of distinct rows of an integer matrix.

    Rows are hashed to 64 bits and the hashes counted after a sort (fast, one 1-D sort). The
    count is then verified: every row must equal the first row of its hash group; on a hash
    collision (practically never) the exact but slower ``np.unique(axis=0)`` is used.
    """
    n = codes.shape[0]
    if n == 0:
        return 0
    h = np.full(n, np.uint64(0xCBF29CE484222325))
    for j in range(codes.shape[1]):
        h ^= codes[:, j].astype(np.uint64)
        h *= _HASH_MULT  # wraps modulo 2^64 by design
        h ^= h >> np.uint64(29)
    order = np.argsort(h, kind="stable")
    hs = h[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(hs[1:], hs[:-1], out=new_group[1:])
    count = int(new_group.sum())
    if count < n:
        first = order[np.flatnonzero(new_group)][np.cumsum(new_group) - 1]
        if not np.array_equal(codes[order], codes[first]):
            count = int(np.unique(codes, axis=0).shape[0])
    return count


def unique_state_action_pairs(
    ds: Dataset,
    bins: int = 100,
    ranges: Sequence[Sequence[float]] | np.ndarray | None = None,
) -> int:
    """Number of distinct discretised state-action pairs ``[s, a]`` in ``ds`` (SACo's ``u``).

    Every dimension of the concatenation of the flattened observation and action is cut into
    ``bins`` equal-width cells over its range (see `saco_grid`: explicit ``ranges``, else the
    finite space bounds, else the dataset's own min/max); values outside the range fall into
    the edge cells. A discrete action is used as it is. The count is exact (unique rows of the
    cell-index matrix).

    Schweighofer et al. (2022) discretise with ``np.digitize`` into ``linspace(min, max, 100)``
    and estimate the count with HyperLogLog; we count exactly. To compare two datasets, count
    both on the same grid: pass the same ``ranges`` (e.g. the ``saco.ranges`` reported by
    `inspect_dataset` for one of them), since ranges from the data differ between datasets.
    """
    if bins < 1:
        raise DatasetError(f"bins must be >= 1, got {bins}", field="bins")
    low, high, _ = saco_grid(ds, ranges)
    return _count_unique_rows(_bin_codes(ds, bins, low, high))


# ------------------------------------------------------------------------------- report
def _f(x: Any) -> float | None:
    """A JSON-safe float (None for NaN/inf)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _summary(values: np.ndarray) -> dict[str, float | None] | None:
    if values.size == 0:
        return None
    v = np.asarray(values, dtype=np.float64)
    q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return {
        "mean": _f(v.mean()),
        "std": _f(v.std()),
        "min": _f(v.min()),
        "q25": _f(q25),
        "median": _f(q50),
        "q75": _f(q75),
        "max": _f(v.max()),
    }


def _field_stats(values: np.ndarray) -> dict[str, Any]:
    n = values.shape[0]
    flat = _flat(values)
    out: dict[str, Any] = {"shape": list(values.shape[1:]), "dtype": str(values.dtype)}
    if n == 0:
        return out
    x = flat.astype(np.float64)
    if flat.shape[1] <= MAX_PER_DIM_STATS:
        out["min"] = [_f(v) for v in x.min(axis=0)]
        out["max"] = [_f(v) for v in x.max(axis=0)]
        out["mean"] = [_f(v) for v in x.mean(axis=0)]
        out["std"] = [_f(v) for v in x.std(axis=0)]
    else:  # images and the like: per-dimension lists would be huge and unreadable
        out.update(min=_f(x.min()), max=_f(x.max()), mean=_f(x.mean()), std=_f(x.std()))
        out["per_dimension"] = False
    return out


def inspect_dataset(
    ds: Dataset,
    *,
    random_return: float | None = None,
    expert_return: float | None = None,
    saco_bins: int = 100,
    saco_reference: int | None = None,
    saco_ranges: Sequence[Sequence[float]] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Everything worth knowing about ``ds`` at a glance, as a JSON-friendly dict.

    Episode returns and lengths, the normalized return and TQ are computed over complete
    episodes; an incomplete last episode (the log stopped mid-episode) is left out of them,
    unless it is the only episode, and flagged in ``last_episode_incomplete``.

    Args:
        random_return, expert_return: TQ references; default to the metadata's
            ``ref_min_score`` / ``ref_max_score``. TQ is None (``tq.reason`` says why) when
            either is unknown or they are equal.
        saco_bins: cells per dimension for SACo (100 as in Schweighofer et al., 2022).
        saco_reference: ``u(D_ref)``, the unique state-action pairs of a reference dataset
            (get it with `unique_state_action_pairs` on the reference, on the same grid). By
            default SACo is normalised by the number of transitions, its upper bound, so that
            SACo is in (0, 1] (the fraction of transitions that are distinct pairs).
        saco_ranges: explicit (low, high) per dimension of ``[s, a]`` for the SACo grid.

    Returns:
        A dict with ``transitions``, ``episodes``, ``last_episode_incomplete``, ``terminals``,
        ``timeouts``, ``boundaries_inferred``, ``episode_returns``/``episode_lengths``
        (mean, std, min, q25, median, q75, max), ``normalized_return_mean``,
        ``observations``/``actions``/``rewards`` statistics, ``extras``, ``content_hash``,
        ``metadata``, ``tq`` and ``saco``.
    """
    t = ds.transitions
    meta = ds.metadata
    n = len(t)
    slices = ds.episode_slices()
    incomplete = n > 0 and not tr.trailing_episode_complete(t)
    returns_all = ds.episode_returns()
    lengths_all = ds.episode_lengths()
    # A cut-off last episode has a truncated return: keep it out unless it is all there is.
    use = len(slices) - 1 if incomplete and len(slices) > 1 else len(slices)
    returns, lengths = returns_all[:use], lengths_all[:use]
    mean_return = float(returns.mean()) if len(returns) else None

    normalized = None
    lo, hi = meta.ref_min_score, meta.ref_max_score
    if mean_return is not None and lo is not None and hi is not None and hi != lo:
        normalized = _f(ds.normalized_score(mean_return))

    report: dict[str, Any] = {
        "name": meta.name,
        "env_id": meta.env_id,
        "transitions": n,
        "episodes": len(slices),
        "last_episode_incomplete": bool(incomplete),
        "episodes_in_return_stats": int(use),
        "terminals": int(np.sum(np.asarray(t.terminals) > 0)),
        "timeouts": int(np.sum(np.asarray(t.timeouts) > 0)),
        "boundaries_inferred": bool(meta.boundaries_inferred),
        "episode_returns": _summary(returns),
        "episode_lengths": _summary(lengths),
        "normalized_return_mean": normalized,
        "observations": _field_stats(np.asarray(t.observations)),
        "actions": _action_stats(ds),
        "rewards": _field_stats(np.asarray(t.rewards).reshape(n, 1)),
        "extras": {
            k: {"shape": list(np.asarray(v).shape[1:]), "dtype": str(np.asarray(v).dtype)}
            for k, v in sorted(t.extras.items())
        },
        "content_hash": ds.content_hash(),
        "metadata": {
            "name": meta.name,
            "env_id": meta.env_id,
            "source": meta.source,
            "observation_space": meta.observation_space.describe(),
            "action_space": meta.action_space.describe(),
            "ref_min_score": meta.ref_min_score,
            "ref_max_score": meta.ref_max_score,
            "provenance": meta.provenance,
        },
        "tq": _trajectory_quality(mean_return, meta, random_return, expert_return),
        "saco": _state_action_coverage(ds, saco_bins, saco_reference, saco_ranges),
    }
    return report


def _action_stats(ds: Dataset) -> dict[str, Any]:
    act = np.asarray(ds.transitions.actions)
    if ds.metadata.action_space.kind != "discrete":
        return _field_stats(act)
    n_act = int(ds.metadata.action_space.n or 0)
    counts = np.bincount(act.astype(np.int64).ravel(), minlength=n_act)
    total = max(int(counts.sum()), 1)
    return {
        "shape": [],
        "dtype": str(act.dtype),
        "counts": [int(c) for c in counts],  # the histogram of actions 0..n-1
        "fractions": [float(c) / total for c in counts],
    }


def _trajectory_quality(
    mean_return: float | None,
    meta: Any,
    random_return: float | None,
    expert_return: float | None,
) -> dict[str, Any]:
    lo = meta.ref_min_score if random_return is None else random_return
    hi = meta.ref_max_score if expert_return is None else expert_return
    from_args = random_return is not None or expert_return is not None
    out: dict[str, Any] = {
        "value": None,
        "random_return": None if lo is None else float(lo),
        "expert_return": None if hi is None else float(hi),
        "references": "arguments" if from_args else "metadata",
        "reason": None,
    }
    if mean_return is None:
        out["reason"] = "the dataset has no episodes"
    elif lo is None or hi is None:
        out["reason"] = (
            "random/expert return unknown: set ref_min_score/ref_max_score in the metadata "
            "or pass random_return and expert_return"
        )
    elif hi == lo:
        out["reason"] = "random and expert returns are equal"
    else:
        out["value"] = _f((mean_return - lo) / (hi - lo))
    return out


def _state_action_coverage(
    ds: Dataset,
    bins: int,
    reference: int | None,
    ranges: Sequence[Sequence[float]] | np.ndarray | None,
) -> dict[str, Any]:
    if bins < 1:
        raise DatasetError(f"saco_bins must be >= 1, got {bins}", field="saco_bins")
    if reference is not None and reference < 1:
        raise DatasetError(f"saco_reference must be >= 1, got {reference}", field="saco_reference")
    low, high, sources = saco_grid(ds, ranges)
    unique = _count_unique_rows(_bin_codes(ds, bins, low, high))
    denom = reference if reference is not None else len(ds)
    return {
        "value": _f(unique / denom) if denom else None,
        "unique_pairs": unique,
        "normalizer": "reference" if reference is not None else "transitions",
        "denominator": int(denom),
        "bins": int(bins),
        "ranges": [[_f(a), _f(b)] for a, b in zip(low, high, strict=True)],
        "range_sources": sources,
    }


# ------------------------------------------------------------------------------- text
def _num(x: Any, width: int = 11) -> str:
    # A leading space keeps wide numbers such as -5.547e-06 from touching their neighbour.
    if x is None:
        return "-".rjust(width)
    return " " + f"{x:.4g}".rjust(width - 1)


def format_report(report: dict[str, Any]) -> str:
    """A readable multi-line text version of an `inspect_dataset` report (for the CLI)."""
    lines: list[str] = []
    meta = report["metadata"]
    title = report.get("name") or "(unnamed dataset)"
    lines.append(f"Dataset {title}" + (f"  [{report['env_id']}]" if report.get("env_id") else ""))
    lines.append(f"  source         {meta['source']}")
    lines.append(f"  hash           {report['content_hash'][:16]}")
    lines.append(f"  spaces         obs {meta['observation_space']}, act {meta['action_space']}")
    lines.append(f"  transitions    {report['transitions']}")
    episodes = f"  episodes       {report['episodes']}"
    if report["last_episode_incomplete"]:
        episodes += " (last one incomplete, left out of return statistics)"
    lines.append(episodes)
    lines.append(f"  terminals      {report['terminals']}")
    lines.append(f"  timeouts       {report['timeouts']}")
    lines.append(f"  boundaries     {'inferred' if report['boundaries_inferred'] else 'recorded'}")
    lines.append("")
    stat_keys = ("mean", "std", "min", "q25", "median", "q75", "max")
    lines.append(" " * 18 + "".join(f"{k:>11}" for k in stat_keys))
    for key, label in (
        ("episode_returns", "episode return"),
        ("episode_lengths", "episode length"),
    ):
        s = report[key]
        if s is None:
            lines.append(f"  {label:<16} (no episodes)")
            continue
        cells = "".join(_num(s[k]) for k in stat_keys)
        lines.append(f"  {label:<16}{cells}")
    lines.append("")
    if report.get("normalized_return_mean") is not None:
        lines.append(f"  normalized return mean  {report['normalized_return_mean']:.2f}")
    tq = report["tq"]
    if tq["value"] is not None:
        lines.append(
            f"  TQ   (trajectory quality)     {tq['value']:.4f}   "
            f"(random {tq['random_return']:g}, expert {tq['expert_return']:g})"
        )
    else:
        lines.append(f"  TQ   (trajectory quality)     n/a   ({tq['reason']})")
    saco = report["saco"]
    value = "n/a" if saco["value"] is None else f"{saco['value']:.4f}"
    lines.append(
        f"  SACo (state-action coverage)  {value}   ({saco['unique_pairs']} unique pairs / "
        f"{saco['denominator']} {saco['normalizer']}, {saco['bins']} bins per dimension)"
    )
    lines.append("")
    dim_keys = ("min", "max", "mean", "std")
    lines.append(f"  {'field':<14}{'dim':>4}" + "".join(f"{k:>11}" for k in dim_keys))
    for field in ("observations", "actions", "rewards"):
        stats = report[field]
        if "counts" in stats:
            fractions = stats.get("fractions") or [0.0] * len(stats["counts"])
            counts = ", ".join(
                f"{i}: {c} ({100 * f:.1f}%)"
                for i, (c, f) in enumerate(zip(stats["counts"], fractions, strict=True))
            )
            lines.append(f"  {field:<14} counts {counts}")
            continue
        if "min" not in stats:
            continue
        if not isinstance(stats["min"], list):
            cells = "".join(_num(stats[k]) for k in dim_keys)
            lines.append(f"  {field:<14}{'all':>4}{cells}")
            continue
        for d in range(len(stats["min"])):
            cells = "".join(_num(stats[k][d]) for k in dim_keys)
            name = field if d == 0 else ""
            lines.append(f"  {name:<14}{d:>4}{cells}")
    extras = report["extras"]
    lines.append("")
    if extras:
        desc = ", ".join(f"{k} {tuple(v['shape'])} {v['dtype']}" for k, v in extras.items())
        lines.append(f"  extras         {desc}")
    else:
        lines.append("  extras         none")
    if meta["ref_min_score"] is not None or meta["ref_max_score"] is not None:
        lines.append(f"  ref scores     min {meta['ref_min_score']}, max {meta['ref_max_score']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- plot
def plot_return_histogram(ds: Dataset, path: str | os.PathLike[str], bins: int = 30) -> Path:
    """Write a PNG histogram of the episode returns to ``path`` (atomically); returns the path.

    An incomplete last episode is drawn too (it is part of the data) and noted in the title.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    from hybridrl.data.io import atomic_path

    path = Path(path)
    returns = ds.episode_returns()
    name = ds.metadata.name or ds.metadata.env_id or "dataset"
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    try:
        if len(returns):
            ax.hist(returns, bins=bins, color="tab:blue", edgecolor="white")
        ax.set_xlabel("episode return")
        ax.set_ylabel("episodes")
        note = ""
        if len(ds) and not tr.trailing_episode_complete(ds.transitions):
            note = ", last incomplete"
        ax.set_title(f"{name}: {len(returns)} episodes{note}")
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
