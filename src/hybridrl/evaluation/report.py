"""Read run directories, aggregate them per recipe, and write a table and plots.

A run directory (written by the runner; the format is documented in ``docs/evaluation.md``):

* ``run.json``: ``name`` (recipe label, groups runs), ``task`` (stratum), ``seed``,
  ``score_unit`` (``normalized`` or ``return``), ``phases`` (``name``, ``kind`` in
  offline/warmup/online, ``start_step``, ``end_step`` in env steps) and ``switch_step``.
* ``metrics.jsonl``: one JSON record per line; ``kind == "eval"`` records give the curve
  (``env_step``, ``update``, ``score``, ...), ``kind == "episode"`` records the online
  episodes (``env_step``, ``return``, ``score``, ``phase``); other kinds are ignored.
* ``summary.json``: the run's O2O metrics. When it is missing or unreadable (a crashed run)
  they are recomputed from ``metrics.jsonl`` with `hybridrl.evaluation.summary.run_summary`,
  the function the runner wrote them with.

Runs are grouped by (``name``, ``score_unit``); every metric is aggregated over the runs that
define it with the IQM and a 95% stratified-bootstrap interval (strata = tasks), see
`hybridrl.evaluation.stats`.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridrl.evaluation.stats import iqm, stratified_bootstrap_ci
from hybridrl.evaluation.summary import SUMMARY_KEYS, is_offline_only, record_score, run_summary
from hybridrl.types import HybridRLError

__all__ = [
    "AGGREGATED_METRICS",
    "RunRecord",
    "format_table",
    "load_run",
    "load_runs",
    "plot_curves",
    "plot_summary",
    "summarize",
    "write_report",
    "write_report_runs",
]

SCORE_UNITS = ("normalized", "return")
# Metrics aggregated with IQM + stratified bootstrap interval in `summarize`.
AGGREGATED_METRICS = (
    "pretrain_score",
    "dip",
    "worst_score",
    "final_score",
    "regret",
    "improvement",
)


# ------------------------------------------------------------------------------- reading
@dataclass
class RunRecord:
    """One run directory: its ``run.json`` fields, eval and episode records, and summary."""

    path: Path
    name: str
    task: str
    seed: int | None
    score_unit: str
    phases: list[dict[str, Any]]
    switch_step: int | None
    evals: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # the whole run.json

    @property
    def offline_only(self) -> bool:
        """True when no phase takes env steps; its curve is plotted against updates."""
        return is_offline_only(self.phases)

    @property
    def x_key(self) -> str:
        return "update" if self.offline_only else "env_step"

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Evaluation curve ``(x, score)`` with x increasing and unique.

        x is ``env_step`` (``update`` for offline-only runs). Offline evaluations of an O2O run
        all share x = switch step; the last one (the pre-trained policy) represents them.
        """
        last: dict[int, float] = {}
        for e in self.evals:
            last[int(e.get(self.x_key) or 0)] = record_score(e)  # later records overwrite
        xs = np.array(sorted(last), dtype=np.float64)
        return xs, np.array([last[int(x)] for x in xs], dtype=np.float64)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise HybridRLError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HybridRLError(f"{path}: not readable JSON ({exc})") from exc


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a truncated last line (crash mid-write) is dropped."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                break  # the run died while appending this line
            raise HybridRLError(f"{path}: line {i + 1} is not valid JSON ({exc})") from exc
        if isinstance(rec, dict):
            records.append(rec)
    return records


def recompute_summary(run: RunRecord, dip_fraction: float | None = None) -> dict[str, Any]:
    """The summary of ``run`` computed from its records, as the runner computes it
    (`hybridrl.evaluation.summary.run_summary`; ``dip_fraction`` None: the run's setting)."""
    return run_summary(run.info, [*run.evals, *run.episodes], dip_fraction=dip_fraction)


def load_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read one run directory. A bad or missing ``run.json`` raises `HybridRLError` naming it."""
    path = Path(path)
    run_file = path / "run.json"
    info = _read_json(run_file)
    if not isinstance(info, dict):
        raise HybridRLError(f"{run_file}: expected a JSON object")
    for key in ("name", "task"):
        if not isinstance(info.get(key), str):
            raise HybridRLError(f"{run_file}: '{key}' must be a string")
    unit = info.get("score_unit", "return")  # without a unit, assume raw returns (no regret)
    if unit not in SCORE_UNITS:
        raise HybridRLError(f"{run_file}: score_unit must be one of {SCORE_UNITS}; got {unit!r}")
    phases = info.get("phases") or []
    if not isinstance(phases, list) or not all(isinstance(p, dict) for p in phases):
        raise HybridRLError(f"{run_file}: 'phases' must be a list of objects")
    switch = info.get("switch_step")
    records = _read_jsonl(path / "metrics.jsonl")
    run = RunRecord(
        path=path,
        name=info["name"],
        task=info["task"],
        seed=None if info.get("seed") is None else int(info["seed"]),
        score_unit=unit,
        phases=phases,
        switch_step=None if switch is None else int(switch),
        evals=[r for r in records if r.get("kind") == "eval"],
        episodes=[r for r in records if r.get("kind") == "episode"],
        info=info,
    )
    summary = recompute_summary(run)
    try:
        stored = _read_json(path / "summary.json")
    except HybridRLError:
        stored = None  # missing or damaged: keep the recomputed values
    if isinstance(stored, dict):
        # The runner's values win; recomputed ones only fill keys it did not write.
        summary.update({k: v for k, v in stored.items() if k in SUMMARY_KEYS})
    summary.update(name=run.name, task=run.task, seed=run.seed, score_unit=run.score_unit)
    run.summary = summary
    return run


def _find_run_dirs(root: Path, depth: int) -> list[Path]:
    if (root / "run.json").is_file():
        return [root]
    if depth == 0 or not root.is_dir():
        return []
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        found.extend(_find_run_dirs(child, depth - 1))
    return found


def load_runs(paths: Sequence[str | os.PathLike[str]]) -> list[RunRecord]:
    """Load run directories. A path without ``run.json`` (a sweep folder) is searched three
    levels down (``sweep/<trial>/seed_K`` as `hybridrl sweep` writes, or
    ``offline/<dataset>/<recipe>/seed_K`` as the former
    ``benchmarks/suite_validation.py`` wrote) for directories that have one; a ``run.json``
    file stands for its folder."""
    dirs: list[Path] = []
    for p in map(Path, paths):
        if p.name == "run.json" and p.is_file():
            p = p.parent
        if not p.exists():
            raise HybridRLError(f"{p}: no such run directory")
        found = _find_run_dirs(p, depth=3)
        if not found:
            raise HybridRLError(f"{p}: no run directory (a folder with run.json) found")
        dirs.extend(found)
    unique = list(dict.fromkeys(d.resolve() for d in dirs))
    return [load_run(d) for d in unique]


# ------------------------------------------------------------------------------- aggregation
def _metric_stats(
    values: Iterable[tuple[str, Any]], reps: int, confidence: float, seed: int
) -> dict[str, Any]:
    by_task: dict[str, list[float]] = defaultdict(list)
    for task, v in values:
        if v is not None and math.isfinite(float(v)):
            by_task[task].append(float(v))
    n = sum(len(v) for v in by_task.values())
    if n == 0:
        return {"n": 0, "mean": None, "iqm": None, "ci": None}
    point, lo, hi = stratified_bootstrap_ci(
        by_task, iqm, reps=reps, confidence=confidence, seed=seed
    )
    mean = float(np.mean([x for v in by_task.values() for x in v]))
    return {"n": n, "mean": mean, "iqm": point, "ci": [lo, hi]}


def summarize(
    runs: Sequence[RunRecord], reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per recipe (runs grouped by ``name`` and ``score_unit``).

    Row keys: ``recipe``, ``score_unit``, ``n_runs``, ``tasks``, ``seeds``; for each of
    `AGGREGATED_METRICS` a dict ``{"n", "mean", "iqm", "ci": [low, high]}`` over the runs that
    define the metric (IQM and stratified-bootstrap interval, strata = tasks); ``q_drift``:
    ``{"n", "mean"}``. Rows are sorted by recipe name.
    """
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in runs:
        groups[(r.name, r.score_unit)].append(r)
    rows = []
    for (name, unit), group in sorted(groups.items()):
        row: dict[str, Any] = {
            "recipe": name,
            "score_unit": unit,
            "n_runs": len(group),
            "tasks": sorted({r.task for r in group}),
            "seeds": sorted({r.seed for r in group if r.seed is not None}),
        }
        for m in AGGREGATED_METRICS:
            row[m] = _metric_stats(
                ((r.task, r.summary.get(m)) for r in group), reps, confidence, seed
            )
        drift = [float(r.summary["q_drift"]) for r in group if r.summary.get("q_drift") is not None]
        row["q_drift"] = {"n": len(drift), "mean": float(np.mean(drift)) if drift else None}
        row["confidence"] = confidence
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- table
def _cell(stats: Mapping[str, Any] | None, digits: int) -> str:
    if not stats or stats.get("iqm") is None:
        return "-"
    lo, hi = stats["ci"]
    return f"{stats['iqm']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


TABLE_COLUMNS = (
    "recipe",
    "unit",
    "runs",
    "tasks",
    "before",
    "dip",
    "worst",
    "after",
    "regret",
    "q drift",
)


def format_table(rows: Sequence[Mapping[str, Any]], fmt: str = "text") -> str:
    """Render `summarize` rows; each score cell is ``IQM [low, high]``, ``-`` when undefined.

    ``before`` = pretrain_score, ``worst`` = worst_score (the lowest score anywhere after the
    switch), ``after`` = final_score, ``q drift`` is the mean. ``fmt`` is
    ``"text"`` (aligned columns) or ``"markdown"``.
    """
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown'; got {fmt!r}")
    body = []
    for r in rows:
        drift = r.get("q_drift", {}).get("mean")
        body.append(
            [
                str(r["recipe"]),
                "norm" if r["score_unit"] == "normalized" else "return",
                str(r["n_runs"]),
                str(len(r["tasks"])),
                _cell(r.get("pretrain_score"), 1),
                _cell(r.get("dip"), 1),
                _cell(r.get("worst_score"), 1),
                _cell(r.get("final_score"), 1),
                _cell(r.get("regret"), 3),
                "-" if drift is None else f"{drift:.3g}",
            ]
        )
    table = [list(TABLE_COLUMNS), *body]
    if fmt == "markdown":
        lines = ["| " + " | ".join(row) + " |" for row in table]
        lines.insert(1, "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(TABLE_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


# ------------------------------------------------------------------------------- plots
def per_task_table(
    runs: Sequence[RunRecord], metric: str = "final_score", fmt: str = "markdown"
) -> str:
    """Tasks as rows, recipes as columns, each cell ``mean ± std (n)`` of ``metric`` over the
    seeds of that task (std with ddof=0, as offline-RL papers tabulate per dataset); ``-``
    where a recipe has no run of the task. ``fmt``: ``"markdown"`` or ``"text"``."""
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown'; got {fmt!r}")
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in runs:
        v = r.summary.get(metric)
        if v is not None:
            values[(r.task, r.name)].append(float(v))
    recipes = sorted({r.name for r in runs})
    tasks = sorted({r.task for r in runs})

    def cell(task: str, recipe: str) -> str:
        v = values.get((task, recipe))
        if not v:
            return "-"
        return f"{np.mean(v):.1f} ± {np.std(v):.1f} ({len(v)})"

    table = [["task", *recipes], *[[t, *(cell(t, n) for n in recipes)] for t in tasks]]
    if fmt == "markdown":
        lines = ["| " + " | ".join(row) + " |" for row in table]
        lines.insert(1, "|" + "---|" * len(table[0]))
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    rows = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table)
    return "\n".join(r.rstrip() for r in rows)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    from hybridrl.data.io import atomic_path

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _mean_curve(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], max_points: int = 400
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds on a common grid and its half-width ``1.96 * sem``.

    The grid is the union of the seeds' steps inside their common range (no extrapolation),
    thinned to ``max_points``; each seed is linearly interpolated onto it.
    """
    lo = max(x[0] for x, _ in curves)
    hi = min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    if grid.size > max_points:
        grid = np.linspace(lo, hi, max_points)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    mean = ys.mean(axis=0)
    half = np.zeros_like(mean)
    if len(curves) > 1:
        half = 1.96 * ys.std(axis=0, ddof=1) / np.sqrt(len(curves))
    return grid, mean, half


def plot_curves(runs: Sequence[RunRecord], path: str | os.PathLike[str]) -> Path:
    """PNG of the evaluation curves: one subplot per task, one color per recipe.

    Thin lines are single seeds; the thick line is the mean across seeds (interpolated onto a
    common step grid) with a shaded 95% band ``mean ± 1.96·sem`` (normal approximation across
    seeds, no band for one seed). x is env steps (updates for offline-only runs); a dashed
    vertical line marks each switch step. Written atomically; returns the path.
    """
    plt = _pyplot()
    path = Path(path)
    tasks = sorted({r.task for r in runs})
    if not tasks:
        raise HybridRLError("no runs to plot")
    colors = {n: f"C{i % 10}" for i, n in enumerate(sorted({r.name for r in runs}))}
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    try:
        for ax, task in zip(axes.flat, tasks, strict=False):
            task_runs = [r for r in runs if r.task == task]
            for name in sorted({r.name for r in task_runs}):
                curves = [c for r in task_runs if r.name == name and (c := r.curve())[0].size]
                for x, y in curves:
                    ax.plot(x, y, color=colors[name], lw=0.7, alpha=0.35)
                if curves:
                    grid, mean, half = _mean_curve(curves)
                    ax.plot(
                        grid, mean, color=colors[name], lw=2.2, label=f"{name} (n={len(curves)})"
                    )
                    ax.fill_between(grid, mean - half, mean + half, color=colors[name], alpha=0.2)
            switches = sorted(
                {
                    r.switch_step
                    for r in task_runs
                    if r.switch_step is not None and not r.offline_only
                }
            )
            for i, s in enumerate(switches):
                ax.axvline(s, color="0.35", ls="--", lw=1.0, label="switch" if i == 0 else None)
                ax.annotate(
                    "switch", (s, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8, color="0.35",
                )  # fmt: skip
            offline = all(r.offline_only for r in task_runs)
            units = {r.score_unit for r in task_runs}
            ax.set_xlabel("updates" if offline else "env steps")
            ax.set_ylabel("normalized score" if units == {"normalized"} else "return")
            ax.set_title(task)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        for ax in list(axes.flat)[len(tasks) :]:
            ax.set_visible(False)
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_summary(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """PNG of the IQM final score per recipe with its interval (rliable's aggregate plot).

    The bar spans the stratified-bootstrap interval, the black tick is the IQM (drawn even when
    the interval is a single point); an open circle marks the IQM before fine-tuning
    (pretrain_score) when the recipe has one. Written atomically; returns the path.
    """
    plt = _pyplot()
    path = Path(path)
    colors = {n: f"C{i % 10}" for i, n in enumerate(sorted({r["recipe"] for r in rows}))}
    fig, ax = plt.subplots(figsize=(6.4, 0.6 * max(len(rows), 1) + 1.6))
    try:
        labels, xs, labelled = [], [], False
        for y, r in enumerate(rows):
            unit = "" if r["score_unit"] == "normalized" else " [return]"
            labels.append(f"{r['recipe']}{unit} (n={r['n_runs']})")
            final, before = r.get("final_score") or {}, r.get("pretrain_score") or {}
            if final.get("iqm") is not None:
                lo, hi = final["ci"]
                ax.barh(y, hi - lo, left=lo, height=0.6, color=colors[r["recipe"]], alpha=0.5)
                ax.plot([final["iqm"]] * 2, [y - 0.3, y + 0.3], color="k", lw=2.5)
                xs += [lo, hi, final["iqm"]]
            if before.get("iqm") is not None:
                label = None if labelled else "before fine-tuning (IQM)"
                ax.plot(before["iqm"], y, "o", mfc="none", mec="k", ms=7, label=label)
                xs.append(before["iqm"])
                labelled = True
        if xs:  # pad so that a degenerate interval on the edge stays visible
            span = max(max(xs) - min(xs), 1e-6 + 0.05 * max(abs(v) for v in xs))
            ax.set_xlim(min(xs) - 0.08 * span, max(xs) + 0.08 * span)
        ax.set_yticks(range(len(rows)), labels)
        ax.set_ylim(len(rows) - 0.5, -0.5)  # first recipe on top
        units = {r["score_unit"] for r in rows}
        what = "normalized score" if units == {"normalized"} else "score"
        conf = round(100 * float(rows[0].get("confidence", 0.95))) if rows else 95
        ax.set_xlabel(f"IQM final {what} (bar: {conf}% stratified bootstrap interval)")
        ax.grid(axis="x", alpha=0.3)
        if labelled:
            ax.legend(loc="best", fontsize=8)
        return _save(fig, path)
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------- report
def _atomic_text(path: Path, text: str) -> None:
    from hybridrl.data.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_report(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Load runs, aggregate, and write ``report.md``, ``curves.png``, ``summary.png`` and
    ``summary.json`` (the `summarize` rows) into ``out_dir``, each atomically.

    Returns ``{"table": text table, "per_task": text table of final scores per task,
    "files": [written paths], "rows": rows}``.
    """
    return write_report_runs(load_runs(paths), out_dir, reps=reps, seed=seed)


def write_report_runs(
    runs: Sequence[RunRecord],
    out_dir: str | os.PathLike[str],
    reps: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """`write_report` for runs already loaded (a sweep relabels them by trial first)."""
    out = Path(out_dir)
    rows = summarize(runs, reps=reps, seed=seed)
    table = format_table(rows, "text")
    files = [
        plot_curves(runs, out / "curves.png"),
        plot_summary(rows, out / "summary.png"),
    ]
    _atomic_text(out / "summary.json", json.dumps(rows, indent=2) + "\n")
    files.append(out / "summary.json")
    _atomic_text(out / "report.md", _markdown(runs, rows, reps))
    files.append(out / "report.md")
    per_task = per_task_table(runs, "final_score", fmt="text")
    return {"table": table, "per_task": per_task, "files": [str(f) for f in files], "rows": rows}


def _markdown(runs: Sequence[RunRecord], rows: Sequence[Mapping[str, Any]], reps: int) -> str:
    def num(v: Any) -> str:
        return "-" if v is None else f"{float(v):.4g}"

    lines = [
        "# hybridrl report",
        "",
        f"{len(runs)} runs, {len(rows)} recipes. Cells: IQM [95% interval] over runs, "
        f"stratified bootstrap over tasks ({reps} replicates). before = score at the switch, "
        "dip = before - min score in the first 25% of fine-tuning (positive = drop), "
        "worst = min score anywhere after the switch (at env step), "
        "after = final score, regret = mean(1 - score/100) over online episodes.",
        "",
        format_table(rows, "markdown"),
        "",
        "## Final score per task",
        "",
        "Mean ± standard deviation over seeds (number of runs).",
        "",
        per_task_table(runs, "final_score"),
        "",
        "![evaluation curves](curves.png)",
        "",
        "![aggregate](summary.png)",
        "",
        "## Runs",
        "",
        "| recipe | task | seed | before | dip | worst (step) | after | regret | wall (s) | path |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r.name, r.task, r.seed or 0)):
        s = r.summary
        worst = num(s.get("worst_score"))
        if s.get("worst_step") is not None:
            worst += f" ({s['worst_step']})"
        lines.append(
            f"| {r.name} | {r.task} | {r.seed} | {num(s.get('pretrain_score'))} | "
            f"{num(s.get('dip'))} | {worst} | {num(s.get('final_score'))} | "
            f"{num(s.get('regret'))} | {num(s.get('wall_time_s'))} | "
            f"`{r.path}` |"
        )
    return "\n".join(lines) + "\n"
