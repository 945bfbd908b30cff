"""Run a sweep on Ray: one `hybridrl run` process per (trial, seed), retried with ``--resume``.

Why Ray core tasks and not Ray Tune: a trial here is a whole ``hybridrl run`` *process* that
writes its own checkpoints, metrics and summary and resumes bit-exactly from them. What the
sweep needs from an engine is placement (a task per run with its CPUs/GPU fraction, on a local
instance or a cluster), a concurrency limit and re-execution when a worker or node is lost:
Ray core gives all three (``num_cpus``/``num_gpus``/``max_retries``), while Tune's
trainables, its own checkpoint format and its result plumbing would duplicate the runner's and
pull in pandas/pyarrow (the plain ``ray`` wheel is the whole `sweep` extra).

Fault tolerance, in two layers:

* inside the task, a run process that dies from a signal (SIGKILL, OOM killer) is started
  again with ``--resume`` (up to ``retries`` times): it continues from its last checkpoint, so
  it ends with the numbers of an uninterrupted run (the runner's exact-resume guarantee). An
  ordinary failure (exit code 1 or 2: bad data, a bug) is not retried: it would fail again.
* if the Ray worker or node dies, Ray re-executes the task (``max_retries``); the new task
  finds the run directory and resumes it. The run process is tied to its worker
  (``PR_SET_PDEATHSIG``), so no orphan keeps the run directory's lock.

A killed driver is resumed with ``resume=True`` (``hybridrl sweep FILE --resume``): runs
whose ``summary.json`` exists are skipped, the others resume from their checkpoints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridrl.sweep.spec import SweepSpec, Trial, load_sweep
from hybridrl.types import HybridRLError

__all__ = ["RunOutcome", "SweepResult", "run_command", "run_sweep", "run_with_retries"]

# Environment variables the driver hands to every run process (a cluster worker has its own
# environment; these select the JAX backend, caches and data stores the user configured).
FORWARDED_PREFIXES = ("JAX_", "XLA_", "HYBRIDRL_", "MINARI_", "TF_CPP_", "MPLBACKEND")


@dataclass
class RunOutcome:
    """What became of one (trial, seed) run."""

    trial: str
    seed: int
    run_dir: str
    status: str  # "done", "failed" or "skipped" (finished before a --resume)
    returncode: int | None = None
    attempts: int = 0
    score: float | None = None
    error: str = ""


@dataclass
class SweepResult:
    """The outcomes of every run, the best one by the sweep's metric, and the report."""

    out: Path
    outcomes: list[RunOutcome]
    best: RunOutcome | None
    report: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def failed(self) -> list[RunOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def _option(name: str, value: Any) -> list[str]:
    """``hybridrl run``'s argument(s) that set option ``name`` to ``value``."""
    from hybridrl.cli._settings import option_name

    flag = option_name(name) if name not in ("recipe",) else ""
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    if name == "reference_returns":
        return [flag, ",".join(str(v) for v in value)]
    if isinstance(value, (dict, list)):
        return [flag, json.dumps(value)]
    return [flag, str(value)]


def run_command(trial: Trial, seed: int, run_dir: Path) -> list[str]:
    """The command line of one run (without ``--resume``): ``hybridrl run``, or for a trial
    with ``runner = "d3rlpy"`` the d3rlpy trial process (`hybridrl.sweep.d3rlpy_trial`)."""
    options = dict(trial.options)
    if options.pop("runner", "hybridrl") == "d3rlpy":
        from hybridrl.sweep.d3rlpy_trial import trial_command

        cmd = trial_command(options, trial.overrides)
        return [*cmd, "--out", str(run_dir), "--seed", str(seed)]
    cmd = [sys.executable, "-m", "hybridrl.cli", "run", str(options.pop("recipe"))]
    cmd += ["--out", str(run_dir), "--seed", str(seed), "--no-progress"]
    for name, value in options.items():
        if value is not None:
            cmd += _option(name, value)
    for name, value in trial.overrides.items():
        cmd += ["--set", f"{name}={json.dumps(value)}"]
    return cmd


def _die_with_parent() -> None:
    # Linux: the run process gets SIGKILL when the worker that started it dies, so a lost
    # worker or driver leaves no orphan holding the run directory's lock.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_with_retries(
    cmd: Sequence[str],
    run_dir: str | Path,
    retries: int,
    env: dict[str, str] | None = None,
    log_path: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``cmd`` until it exits; a death by signal is retried with ``--resume``.

    Returns ``{"returncode", "attempts", "summary", "error"}``. A run that was started before
    (its ``run.json`` exists: a retried Ray task, a resumed sweep) continues with
    ``--resume`` from the first attempt.
    """
    run_dir = Path(run_dir)
    log = Path(log_path) if log_path else run_dir.with_suffix(".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    _write_hardware(run_dir, full_env)
    attempts, code = 0, None
    while True:
        attempts += 1
        resume = (run_dir / "run.json").exists()
        args = [*cmd, "--resume"] if resume else list(cmd)
        with open(log, "a") as f:
            f.write(f"# attempt {attempts}: {' '.join(args)}\n")
            f.flush()
            proc = subprocess.run(
                args, stdout=f, stderr=subprocess.STDOUT, env=full_env, preexec_fn=_die_with_parent
            )
        code = proc.returncode
        if code == 0 or code > 0 or attempts > retries:
            break  # done, an ordinary failure (would fail again), or out of retries
    summary = _read_summary(run_dir)
    error = "" if code == 0 else _tail(log)
    return {"returncode": code, "attempts": attempts, "summary": summary, "error": error}


def _write_hardware(run_dir: Path, env: dict[str, str]) -> None:
    """``run_dir/hardware.json``: the machine and thread settings the run process gets (the
    first attempt's; results pages name the hardware their numbers came from)."""
    import platform

    path = run_dir / "hardware.json"
    if path.exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "node": platform.node(),
        "cpu_count": os.cpu_count(),
        "threads": {k: env.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")},
        "jax_platforms": env.get("JAX_PLATFORMS"),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(path)


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text().strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _score(summary: dict[str, Any] | None, metric: str) -> float | None:
    value = (summary or {}).get(metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


class Progress:
    """One status line: runs done, in flight (submitted to Ray: running, or waiting for the
    CPUs their ``[resources]`` ask for) and failed, and the best score so far (redrawn in
    place on a terminal, printed on each change otherwise)."""

    def __init__(self, total: int, metric: str, echo: Callable[[str], None] | None) -> None:
        self.total, self.metric, self.echo = total, metric, echo
        self.tty = echo is None and sys.stderr.isatty()
        self.last = ""

    def show(self, done: int, running: int, failed: int, best: RunOutcome | None) -> None:
        best_text = (
            f"best {self.metric} {best.score:.4g} ({best.trial} seed {best.seed})"
            if best and best.score is not None
            else f"best {self.metric} -"
        )
        line = (
            f"sweep: {done}/{self.total} done, {running} in flight (running or queued for a "
            f"CPU), {failed} failed; {best_text}"
        )
        if line == self.last:
            return
        self.last = line
        if self.echo is not None:
            self.echo(line)
        elif self.tty:
            sys.stderr.write("\r\x1b[2K" + line)
            sys.stderr.flush()
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and self.last:
            sys.stderr.write("\n")


def _prepare_out(spec: SweepSpec, out: Path, resume: bool) -> None:
    record = out / "sweep.json"
    wanted = spec.to_dict()
    if record.exists():
        if not resume:
            raise HybridRLError(
                f"{out} already holds a sweep; pass --resume to continue it (or choose --out)"
            )
        try:
            stored = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError):
            stored = None
        # resources may change on a resume (more machines); the trials may not
        if (
            not isinstance(stored, dict)
            or stored.get("trials") != json.loads(json.dumps(wanted["trials"]))
            or stored.get("seeds") != wanted["seeds"]
        ):
            raise HybridRLError(
                f"{out}/sweep.json: the sweep file's trials or seeds changed since the sweep "
                "started; --resume continues the same sweep (choose another --out)"
            )
    out.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(wanted, indent=2) + "\n")
    tmp.replace(record)


def _forwarded_env(local: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_PREFIXES)}
    if local and "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]  # same machine: the same import path
    return env


def _check_datasets(spec: SweepSpec) -> None:
    """Refuse a sweep whose datasets are not on this machine before any run starts, naming
    the command that builds a suite dataset (``minari:hybridrl/ENV/KIND-v0``)."""
    from hybridrl.data import dataset_format
    from hybridrl.data.minari_io import minari_store_path

    missing: list[str] = []
    for spec_text in dict.fromkeys(
        str(t.options["dataset"]) for t in spec.trials if "dataset" in t.options
    ):
        try:
            fmt, target = dataset_format(spec_text)
        except HybridRLError:
            continue  # `hybridrl run` says what is wrong with it
        where = minari_store_path() / target if fmt == "minari" else Path(target)
        if where.exists():
            continue
        if fmt == "minari" and target.startswith("hybridrl/"):
            name = "-".join(target.split("/")[1:])
            missing.append(f"{spec_text} (hybridrl datasets build {name})")
        else:
            missing.append(f"{spec_text} (not found at {where})")
    if missing:
        raise HybridRLError(f"{spec.source}: datasets missing: " + "; ".join(missing))


def run_sweep(
    sweep: str | Path | SweepSpec,
    out: str | Path,
    *,
    resume: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    max_concurrent: int | None = None,
    report: bool = True,
    echo: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every (trial, seed) of a sweep as a ``hybridrl run`` process on Ray.

    ``sweep`` is a sweep file or a `SweepSpec`. Runs go to ``<out>/<trial>/seed_K`` (their
    output to ``seed_K.log`` beside). ``address`` joins an existing Ray cluster; otherwise
    a local instance is started with ``num_cpus`` (default: all) and stopped at the end.
    ``max_concurrent`` overrides the file's ``[resources] max_concurrent``. ``resume``
    continues a sweep in ``out``: finished runs are skipped, the others resume. ``echo``
    receives the progress lines (default: one live line on stderr). With ``report``, the
    finished runs' `hybridrl report` is written to ``<out>/report``.
    """
    try:
        import ray
    except ImportError:
        raise HybridRLError(
            "hybridrl sweep needs Ray: pip install 'hybridrl[sweep]' (or pip install ray)"
        ) from None
    spec = sweep if isinstance(sweep, SweepSpec) else load_sweep(sweep)
    if any(t.options.get("runner") == "d3rlpy" for t in spec.trials) and not address:
        from hybridrl.sweep.d3rlpy_trial import PYTHON_VARIABLE, d3rlpy_python

        if d3rlpy_python() is None:  # before Ray starts (on a cluster, each node looks)
            raise HybridRLError(
                f"{spec.source}: runner d3rlpy needs a Python with d3rlpy: run "
                f"scripts/setup-compare, or set ${PYTHON_VARIABLE}"
            )
    if not address:  # on a cluster the paths are the nodes' to resolve
        _check_datasets(spec)
    out = Path(out)
    _prepare_out(spec, out, resume)
    res = spec.resources
    limit = max_concurrent or res.max_concurrent
    runs = spec.runs()
    outcomes: dict[tuple[str, int], RunOutcome] = {}
    todo: list[tuple[Trial, int]] = []
    for trial, seed in runs:
        run_dir = out / trial.name / f"seed_{seed}"
        summary = _read_summary(run_dir) if resume else None
        if summary is not None:
            outcomes[(trial.name, seed)] = RunOutcome(
                trial.name, seed, str(run_dir), "skipped", 0, 0, _score(summary, spec.metric)
            )
        else:
            todo.append((trial, seed))

    progress = Progress(len(runs), spec.metric, echo)
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
    env = _forwarded_env(local=not address)
    task = ray.remote(run_with_retries).options(
        num_cpus=res.cpus, num_gpus=res.gpus, max_retries=res.retries, retry_exceptions=False
    )
    inflight: dict[Any, tuple[Trial, int]] = {}

    def best() -> RunOutcome | None:
        scored = [o for o in outcomes.values() if o.score is not None]
        return max(scored, key=lambda o: o.score or 0.0) if scored else None

    def show() -> None:
        failed = sum(o.status == "failed" for o in outcomes.values())
        progress.show(len(outcomes) - failed, len(inflight), failed, best())

    try:
        queue = list(todo)
        show()
        while queue or inflight:
            while queue and (limit is None or len(inflight) < limit):
                trial, seed = queue.pop(0)
                run_dir = out / trial.name / f"seed_{seed}"
                cmd = run_command(trial, seed, run_dir)
                ref = task.remote(cmd, str(run_dir), res.retries, env, str(run_dir) + ".log")
                inflight[ref] = (trial, seed)
            show()
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                trial, seed = inflight.pop(ref)
                run_dir = out / trial.name / f"seed_{seed}"
                try:
                    r = ray.get(ref)
                except ray.exceptions.RayError as exc:  # worker/node lost past max_retries
                    r = {"returncode": None, "attempts": 0, "summary": None, "error": str(exc)}
                ok = r["returncode"] == 0 and r["summary"] is not None
                outcomes[(trial.name, seed)] = RunOutcome(
                    trial.name,
                    seed,
                    str(run_dir),
                    "done" if ok else "failed",
                    r["returncode"],
                    r["attempts"],
                    _score(r["summary"], spec.metric),
                    r["error"][-500:],
                )
        show()
    finally:
        progress.close()
        if started_here:
            ray.shutdown()

    ordered = [outcomes[(t.name, k)] for t, k in runs if (t.name, k) in outcomes]
    result = SweepResult(out, ordered, best())
    (out / "results.json").write_text(json.dumps([o.__dict__ for o in ordered], indent=2) + "\n")
    finished = [o for o in ordered if o.status != "failed"]
    if report and finished:
        result.report = _write_report(spec, finished, out / "report")
    return result


def _write_report(spec: SweepSpec, finished: list[RunOutcome], where: Path) -> dict[str, Any]:
    """`hybridrl report` of the finished runs, grouped by trial label (recipe and settings),
    the tasks (datasets, envs) as strata."""
    from hybridrl.evaluation.report import load_runs, write_report_runs

    labels = {t.name: t.label for t in spec.trials}
    runs = load_runs([o.run_dir for o in finished])
    for run, outcome in zip(runs, finished, strict=True):
        run.name = labels.get(outcome.trial) or run.name
        run.summary["name"] = run.name
    return write_report_runs(runs, where)
