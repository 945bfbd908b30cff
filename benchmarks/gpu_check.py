"""GPU check (issue #16): updates/s of SAC, IQL, TD3+BC and CQL beside d3rlpy on the same
device, the wall-clock of 1M IQL updates, and vmapped-seed scaling, in one bounded run.

Run it through ``benchmarks/gpu_check.sh`` (which installs the carried wheels and sets the
paths); it writes ``gpu_check.json`` into ``--out`` after every section, so a run cut short
still leaves what it measured. Every section runs in its own process with a hard timeout, and
one that fails or times out records its error in the JSON while the rest still run.

Sections, each with a share of ``--budget`` seconds (time a section leaves unused passes on to
the next one):

- ``env``: jax/jaxlib/flax/optax/numpy/torch versions, JAX's devices, ``nvidia-smi``, and the
  sustained 256x256 matmul GFLOP/s that ``hybridrl bench throughput`` uses as its ceiling
  (`hybridrl.bench.matmul_peak_gflops`; 4096x4096 as well on a GPU).
- ``hybridrl``: `hybridrl.bench.measure_hybridrl` (best of 3 compiled chunks, sampling from a
  100k buffer included) and XLA's FLOPs per update for each agent.
- ``d3rlpy``: `hybridrl.bench_d3rlpy` ``throughput --device`` in d3rlpy's own environment
  (d3rlpy pins gymnasium 1.0.0), one process per algorithm.
- ``iql_1m``: 1M IQL updates in big scanned chunks (`scan_updates`); stops early when its time
  cap is hit and records the updates done, the seconds and ``cap_hit`` (no extrapolation).
- ``vmap``: summed updates/s of 1, 2, 5 and 10 seeds of SAC and IQL as one program
  (`hybridrl.training.seeds.scan_updates_seeds`: ``jax.vmap`` of the same ``scan_updates``
  over the stacked agent states and keys) beside the same seeds run one after another.
  hybridrl's runner has no ``--vmap-seeds`` option yet: this measures the agent update under
  vmap directly, not whole runs.

``--tiny`` shrinks everything (16x16 networks, batch 32, a few hundred updates) so the whole
script runs on a CPU in well under a minute; its numbers mean nothing beyond "it works".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
COMPARED = ("sac", "iql", "td3_bc", "cql")
DEADLINE_VAR = "GPU_CHECK_DEADLINE"


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of a run: the standard ones (``hybridrl bench throughput``) or tiny."""

    hidden: tuple[int, ...] = (256, 256)
    batch_size: int = 256
    obs_dim: int = 17
    act_dim: int = 6
    buffer_size: int = 100_000  # transitions sampled from (as `hybridrl.bench`)
    chunk: int = 1000  # updates per compiled chunk in the throughput section
    d3rlpy_updates: int = 300
    iql_total: int = 1_000_000
    iql_chunk: int = 50_000
    vmap_seeds: tuple[int, ...] = (1, 10, 2, 5)
    vmap_agents: tuple[str, ...] = ("sac", "iql")
    vmap_chunk: int = 1000


TINY = Sizes(
    hidden=(16, 16),
    batch_size=32,
    buffer_size=2_000,
    chunk=50,
    d3rlpy_updates=20,
    iql_total=2_000,
    iql_chunk=200,
    vmap_seeds=(1, 2),
    vmap_chunk=50,
)

# share of the budget per section, in run order
PLAN: tuple[tuple[str, float], ...] = (
    ("env", 0.05),
    ("hybridrl", 0.20),
    ("d3rlpy", 0.20),
    ("iql_1m", 0.25),
    ("vmap", 0.30),
)


# ---------------------------------------------------------------- orchestration (no JAX here)


@dataclass
class Section:
    """One step of the plan: a command run with a hard timeout, which writes its JSON result
    (possibly partial, rewritten as it goes) to ``result``."""

    name: str
    share: float
    argv: list[str]
    result: Path
    env: dict[str, str] | None = None


@dataclass
class Report:
    """The JSON file being built, written atomically after every section."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=False))
        os.replace(tmp, self.path)


def run_plan(
    sections: list[Section],
    budget: float,
    report: Report,
    *,
    log: Callable[[str], None] = print,
    reserve: float = 5.0,
) -> None:
    """Run ``sections`` in order. Each gets ``share * budget`` seconds plus what earlier ones
    left unused, never more than the budget left minus ``reserve`` (for writing the report);
    a section that exits non-zero, times out or is skipped for lack of time is recorded as
    such under ``report.data["sections"][name]`` and the next one runs."""
    start = time.monotonic()
    carry = 0.0
    sections_out: dict[str, Any] = report.data.setdefault("sections", {})
    for s in sections:
        left = budget - (time.monotonic() - start) - reserve
        allot = min(s.share * budget + carry, left)
        entry: dict[str, Any] = {"allotted_s": round(max(allot, 0.0), 1)}
        sections_out[s.name] = entry
        if allot < 1.0:
            entry.update(status="skipped", error="no time left in the budget")
            log(f"[gpu_check] {s.name}: skipped (no time left)")
            report.write()
            continue
        log(f"[gpu_check] {s.name}: up to {allot:.0f} s")
        t0 = time.monotonic()
        s.result.unlink(missing_ok=True)
        # the section's own soft deadline (it stops between pieces before the hard kill)
        env = {**(s.env or os.environ), DEADLINE_VAR: str(time.time() + allot)}
        try:
            proc = subprocess.run(s.argv, env=env, timeout=allot, check=False)
            entry["status"] = "ok" if proc.returncode == 0 else "failed"
            if proc.returncode != 0:
                entry["error"] = f"exit status {proc.returncode} (see the log)"
        except subprocess.TimeoutExpired:
            entry.update(status="timed_out", error=f"killed after {allot:.0f} s")
        except OSError as e:  # e.g. the Python to run is missing
            entry.update(status="failed", error=f"{type(e).__name__}: {e}")
        used = time.monotonic() - t0
        entry["wall_s"] = round(used, 1)
        carry = max(allot - used, 0.0)
        if s.result.exists():
            try:
                entry["result"] = json.loads(s.result.read_text())
            except json.JSONDecodeError as e:
                entry.setdefault("error", f"unreadable result: {e}")
        # a section may report its own error (e.g. a missing d3rlpy) while exiting 0, or
        # errors of some of its pieces (one agent of four)
        result = entry.get("result", {})
        if entry["status"] in ("ok", "failed") and result.get("error"):
            entry.update(status="failed", error=result["error"])
        elif entry["status"] == "ok" and result.get("errors"):
            entry.update(status="partial", error=f"some pieces failed: {sorted(result['errors'])}")
        log(f"[gpu_check] {s.name}: {entry['status']} in {used:.1f} s")
        report.write()
    report.data["total_wall_s"] = round(time.monotonic() - start, 1)
    report.write()


def summarize(data: dict[str, Any]) -> dict[str, Any]:
    """hybridrl/d3rlpy ratios per agent and the vmap speed-ups, from the sections' results."""
    sec = data.get("sections", {})
    ours = sec.get("hybridrl", {}).get("result", {}).get("updates_per_s", {})
    theirs = sec.get("d3rlpy", {}).get("result", {}).get("updates_per_s", {})
    out: dict[str, Any] = {
        "ratio_hybridrl_over_d3rlpy": {
            a: round(ours[a] / theirs[a], 2) for a in ours if theirs.get(a)
        }
    }
    vm = sec.get("vmap", {}).get("result", {}).get("agents", {})
    out["vmap_speedup_over_sequential"] = {
        a: {
            str(n): round(r["vmapped_updates_per_s"] / r["sequential_updates_per_s"], 2)
            for n, r in rows.items()
            if r.get("sequential_updates_per_s") and r.get("vmapped_updates_per_s")
        }
        for a, rows in vm.items()
    }
    return out


def _section_argv(name: str, result: Path, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-u", str(HERE), "section", name, "--result", str(result)]
    if args.tiny:
        argv.append("--tiny")
    if name == "iql_1m":
        argv += ["--cap", str(args.iql_cap)]
    if name == "d3rlpy":
        argv += ["--device", args.d3rlpy_device]
        if args.d3rlpy_python:
            argv += ["--d3rlpy-python", args.d3rlpy_python]
        if args.d3rlpy_pythonpath:
            argv += ["--d3rlpy-pythonpath", args.d3rlpy_pythonpath]
    return argv


def main_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out / "gpu_check.json")
    report.data = {
        "what": "hybridrl GPU check (issue #16): benchmarks/gpu_check.py",
        "tiny": bool(args.tiny),
        "budget_s": args.budget,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {
            "cpus": os.cpu_count(),
            "load_avg": list(os.getloadavg()),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "notes": [
            "vmap: the agent update under jax.vmap over seeds (hybridrl run has no "
            "--vmap-seeds option yet), not whole training runs",
            "iql_1m: measured updates only; when cap_hit is true the 1M were not all run",
        ],
    }
    report.write()
    wanted = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(wanted) - {n for n, _ in PLAN})
    if unknown:
        raise SystemExit(f"gpu_check: unknown section(s) {unknown}; known: {[n for n, _ in PLAN]}")
    shares = [(n, sh) for n, sh in PLAN if n in wanted]
    total = sum(sh for _, sh in shares)
    sections = [
        Section(n, sh / total, _section_argv(n, out / f"{n}.json", args), out / f"{n}.json")
        for n, sh in shares
    ]
    budget = args.budget - (time.time() - args.t0 if args.t0 else 0.0)
    run_plan(sections, budget, report)
    report.data["summary"] = summarize(report.data)
    report.data["host"]["load_avg_end"] = list(os.getloadavg())
    report.write()
    print(json.dumps(report.data["summary"], indent=2))
    print(f"[gpu_check] wrote {report.path}")


# ------------------------------------------------------------------ sections (JAX from here)


class Partial:
    """A section's result file, rewritten after every piece so a kill keeps what was done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def save(self) -> None:
        tmp = self.path.with_suffix(".part")
        tmp.write_text(json.dumps(self.data, indent=2))
        os.replace(tmp, self.path)


def seconds_left() -> float:
    """Seconds until this section's soft deadline (set by `run_plan`; inf when run alone)."""
    deadline = os.environ.get(DEADLINE_VAR)
    return float(deadline) - time.time() if deadline else float("inf")


def agent_config(name: str, sizes: Sizes) -> Any:
    """The agent's default config with ``sizes.hidden`` networks (the standard is 2x256)."""
    from hybridrl.agents import get_agent

    return get_agent(name).Config(hidden_dims=sizes.hidden)


def section_env(res: Partial, sizes: Sizes, tiny: bool) -> None:
    import importlib

    versions: dict[str, str | None] = {}
    for mod in ("jax", "jaxlib", "flax", "optax", "numpy", "gymnasium", "torch"):
        try:
            versions[mod] = importlib.import_module(mod).__version__
        except Exception as e:  # recorded, not fatal: torch is absent on most CPU machines
            versions[mod] = f"unavailable: {type(e).__name__}: {e}"
    res.data["versions"] = versions
    res.save()
    import jax

    from hybridrl.bench import matmul_peak_gflops

    devs = jax.devices()
    res.data["jax_backend"] = jax.default_backend()
    res.data["devices"] = [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}" for d in devs]
    res.data["device_kind"] = getattr(devs[0], "device_kind", str(devs[0]))
    if shutil.which("nvidia-smi"):
        q = "--query-gpu=name,driver_version,memory.total,clocks.max.sm"
        smi = subprocess.run(
            ["nvidia-smi", q, "--format=csv,noheader"], capture_output=True, text=True
        )
        res.data["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    res.save()
    res.data["matmul_peak_gflops_256"] = matmul_peak_gflops(repeats=50 if tiny else 1000)
    res.save()
    if jax.default_backend() == "gpu":
        res.data["matmul_peak_gflops_4096"] = matmul_peak_gflops(size=4096, repeats=50)
        res.save()


def section_hybridrl(res: Partial, sizes: Sizes, tiny: bool) -> None:
    import jax

    from hybridrl.bench import matmul_peak_gflops, measure_hybridrl, update_gflops

    res.data.update(device=str(jax.devices()[0]), chunk=sizes.chunk, updates_per_s={})
    res.data.update(gflops_per_update={}, errors={})
    peak = matmul_peak_gflops(repeats=50 if tiny else 1000)
    res.data["matmul_peak_gflops_256"] = peak
    dims = {"obs_dim": sizes.obs_dim, "act_dim": sizes.act_dim, "batch_size": sizes.batch_size}
    for name in COMPARED:
        t0 = time.perf_counter()
        try:
            cfg = agent_config(name, sizes)
            ups = measure_hybridrl(name, chunk=sizes.chunk, config=cfg, **dims)
            res.data["updates_per_s"][name] = ups
            print(f"  hybridrl {name}: {ups:,.1f} updates/s ({time.perf_counter() - t0:.1f} s)")
        except Exception as e:  # one agent failing must not lose the others
            res.data["errors"][name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        res.save()
    # FLOPs per update (one more compilation each): after every throughput, while time is left
    for name in res.data["updates_per_s"]:
        if seconds_left() < 15.0:
            res.data["errors"][f"{name}_gflops"] = "skipped: section deadline"
            continue
        try:
            res.data["gflops_per_update"][name] = update_gflops(
                name, config=agent_config(name, sizes), **dims
            )
        except Exception as e:
            res.data["errors"][f"{name}_gflops"] = f"{type(e).__name__}: {e}"
        res.save()
    # the CPU-path diagnostic of `hybridrl bench throughput`: share of the matmul ceiling
    res.data["pct_of_matmul_peak"] = {
        n: 100 * ups * res.data["gflops_per_update"][n] / peak
        for n, ups in res.data["updates_per_s"].items()
        if n in res.data["gflops_per_update"]
    }


def section_d3rlpy(res: Partial, sizes: Sizes, args: argparse.Namespace) -> None:
    # the adapter's caller side needs neither JAX nor the rest of hybridrl: this section runs
    # even where hybridrl's import fails, and leaves the GPU to torch
    from hybridrl.bench_d3rlpy import find_d3rlpy_python, measure_d3rlpy

    python = find_d3rlpy_python(args.d3rlpy_python)
    res.data.update(device=args.device, python=python, updates_per_s={}, errors={})
    if python is None:
        res.data["error"] = "no d3rlpy environment (--d3rlpy-python, or scripts/setup-compare)"
        return
    env = None
    if args.d3rlpy_pythonpath is not None:
        # d3rlpy's own site first, nothing of hybridrl's (its gymnasium 1.4 would shadow 1.0)
        env = {**os.environ, "PYTHONPATH": args.d3rlpy_pythonpath}
    for name in COMPARED:
        t0 = time.perf_counter()
        if seconds_left() < 5.0:
            res.data["errors"][name] = "skipped: section deadline"
            continue
        try:
            out = measure_d3rlpy(
                python,
                [name],
                updates=sizes.d3rlpy_updates,
                batch_size=sizes.batch_size,
                obs_dim=sizes.obs_dim,
                act_dim=sizes.act_dim,
                device=args.device,
                env=env,
                hidden=list(sizes.hidden),
                timeout=max(seconds_left() - 2.0, 1.0),
            )
            res.data["updates_per_s"][name] = out[name]
            res.data["d3rlpy_version"], res.data["torch"] = out["d3rlpy_version"], out["torch"]
            dt = time.perf_counter() - t0
            print(f"  d3rlpy {name}: {out[name]:,.1f} updates/s ({dt:.1f} s)")
        except Exception as e:
            res.data["errors"][name] = f"{type(e).__name__}: {str(e)[-1500:]}"
            print(f"  d3rlpy {name}: {res.data['errors'][name]}")
        res.save()
    if not res.data["updates_per_s"]:
        res.data["error"] = "every d3rlpy measurement failed: " + "; ".join(
            f"{k}: {v.splitlines()[-1] if v else ''}" for k, v in res.data["errors"].items()
        )


def run_chunks(
    res: Partial,
    step: Callable[[int], dict[str, float]],
    *,
    total: int,
    chunk: int,
    cap: float,
    start: float,
) -> None:
    """Call ``step(n)`` (run ``n`` updates, block, return their metrics) in chunks of ``chunk``
    until ``total`` updates are done, or stop at a chunk boundary once ``cap`` seconds have
    passed since ``start`` (``time.perf_counter``) or the section's deadline would cut the
    next chunk; at least one chunk always runs. Records the updates done, the seconds,
    ``cap_hit`` and what stopped it in ``res`` after every chunk, and never extrapolates."""
    res.data.update(
        target_updates=total,
        chunk=chunk,
        cap_s=cap,
        updates_done=0,
        seconds=0.0,
        cap_hit=False,
        stopped_by=None,
        chunk_updates=[],
        chunk_seconds=[],
    )
    done = 0
    while done < total:
        n = min(chunk, total - done)
        t0 = time.perf_counter()
        metrics = step(n)
        done += n
        res.data["chunk_updates"].append(n)
        res.data["chunk_seconds"].append(round(time.perf_counter() - t0, 4))
        res.data.update(updates_done=done, seconds=time.perf_counter() - start)
        res.data["last_metrics"] = metrics
        res.save()
        print(f"  {done:,} updates, {res.data['seconds']:.1f} s")
        if done >= total:
            break
        if time.perf_counter() - start > cap:
            res.data.update(cap_hit=True, stopped_by="cap")
            break
        if seconds_left() < 1.5 * res.data["chunk_seconds"][-1] + 2.0:
            res.data.update(cap_hit=True, stopped_by="section deadline")
            break
    # chunks after the first, which includes compilation
    steady_s = sum(res.data["chunk_seconds"][1:])
    if steady_s > 0:
        res.data["steady_updates_per_s"] = sum(res.data["chunk_updates"][1:]) / steady_s
    res.save()


def section_iql_1m(res: Partial, sizes: Sizes, cap: float) -> None:
    """``sizes.iql_total`` (1M) IQL updates at the standard size in scanned chunks of
    ``sizes.iql_chunk``, within ``cap`` seconds (`run_chunks`); the seconds are wall-clock
    from before the agent's init, so they include the buffer, compilation and every chunk."""
    import jax

    from hybridrl.agents import get_agent
    from hybridrl.bench import random_buffer
    from hybridrl.training.updates import scan_updates

    agent = get_agent("iql")
    start = time.perf_counter()
    state = agent.init(
        agent_config("iql", sizes), jax.random.PRNGKey(0), sizes.obs_dim, sizes.act_dim
    )
    buffer = random_buffer(sizes.buffer_size, sizes.obs_dim, sizes.act_dim)
    key = jax.random.PRNGKey(1)

    def step(n: int) -> dict[str, float]:
        nonlocal state, key
        key, k = jax.random.split(key)
        state, metrics = scan_updates(
            agent.update, state, buffer, k, num_updates=n, batch_size=sizes.batch_size
        )
        return {name: float(v) for name, v in metrics.items()}  # float() blocks

    run_chunks(res, step, total=sizes.iql_total, chunk=sizes.iql_chunk, cap=cap, start=start)
    res.data["includes"] = "init, buffer, compilation and every chunk (wall-clock from start)"


def section_vmap(res: Partial, sizes: Sizes) -> None:
    """Summed updates/s of K seeds as one program (`hybridrl.training.seeds`: ``init_seeds``
    and ``scan_updates_seeds``, i.e. ``jax.vmap`` of `scan_updates` over the stacked states and
    one key per seed, the buffer shared) beside the same K seeds run one after another with
    the single-seed program. A row is skipped when the section's deadline would cut it."""
    import jax

    from hybridrl.agents import get_agent
    from hybridrl.bench import random_buffer
    from hybridrl.training.seeds import init_seeds, scan_updates_seeds, select_seed
    from hybridrl.training.updates import scan_updates

    buffer = random_buffer(sizes.buffer_size, sizes.obs_dim, sizes.act_dim)
    chunk, batch = sizes.vmap_chunk, sizes.batch_size
    res.data.update(chunk=chunk, seeds=list(sizes.vmap_seeds), agents={})
    last_s = 0.0  # seconds of the last row measured (mostly compilation on a GPU)
    # seed counts outermost, in the given order (1 and 10 first): a short budget still
    # gets the widest comparison for both agents
    for n in sizes.vmap_seeds:
        for name in sizes.vmap_agents:
            agent = get_agent(name)
            cfg = agent_config(name, sizes)
            row: dict[str, Any] = {}
            res.data["agents"].setdefault(name, {})[str(n)] = row
            need = 1.5 * last_s
            if seconds_left() < need + 2.0:
                row["error"] = f"skipped: section deadline (needs about {need:.0f} s)"
                res.save()
                continue
            t_row = time.perf_counter()
            try:
                states = init_seeds(
                    agent,
                    cfg,
                    jax.random.split(jax.random.PRNGKey(0), n),
                    sizes.obs_dim,
                    sizes.act_dim,
                )
                keys = jax.random.split(jax.random.PRNGKey(100), n)
                singles = [select_seed(states, i) for i in range(n)]
                total = n * chunk
                # one after another: the single-seed program, n calls, blocked at the end
                kw = {"num_updates": chunk, "batch_size": batch}
                jax.block_until_ready(scan_updates(agent.update, singles[0], buffer, keys[0], **kw))
                best = 0.0
                for _ in range(2):
                    t0 = time.perf_counter()
                    outs = [
                        scan_updates(agent.update, st, buffer, k, **kw)
                        for st, k in zip(singles, keys, strict=True)
                    ]
                    jax.block_until_ready(outs)
                    best = max(best, total / (time.perf_counter() - t0))
                row["sequential_updates_per_s"] = best
                # one program: vmap over the seeds
                t0 = time.perf_counter()
                jax.block_until_ready(scan_updates_seeds(agent.update, states, buffer, keys, **kw))
                row["vmapped_compile_and_first_s"] = time.perf_counter() - t0
                best = 0.0
                for _ in range(2):
                    t0 = time.perf_counter()
                    out = scan_updates_seeds(agent.update, states, buffer, keys, **kw)
                    jax.block_until_ready(out)
                    best = max(best, total / (time.perf_counter() - t0))
                row["vmapped_updates_per_s"] = best
                row["row_s"] = last_s = time.perf_counter() - t_row
                print(
                    f"  {name} x{n}: vmapped {best:,.0f} vs sequential "
                    f"{row['sequential_updates_per_s']:,.0f} updates/s (summed over seeds)"
                )
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}"
                traceback.print_exc()
            res.save()


def main_section(args: argparse.Namespace) -> None:
    res = Partial(Path(args.result))
    sizes = TINY if args.tiny else Sizes()
    res.data["sizes"] = {
        k: list(v) if isinstance(v, tuple) else v for k, v in sizes.__dict__.items()
    }
    res.save()
    try:
        if args.name == "env":
            section_env(res, sizes, args.tiny)
        elif args.name == "hybridrl":
            section_hybridrl(res, sizes, args.tiny)
        elif args.name == "d3rlpy":
            section_d3rlpy(res, sizes, args)
        elif args.name == "iql_1m":
            section_iql_1m(res, sizes, args.cap)
        elif args.name == "vmap":
            section_vmap(res, sizes)
        else:
            raise SystemExit(f"unknown section {args.name!r}")
    except Exception as e:
        res.data["error"] = f"{type(e).__name__}: {e}"
        res.save()
        raise
    res.save()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="every section, within --budget seconds")
    r.add_argument("--out", required=True, help="directory for gpu_check.json (and logs)")
    r.add_argument("--budget", type=float, default=420.0, help="total seconds for all sections")
    r.add_argument("--t0", type=float, default=0.0, help="epoch seconds the budget started at")
    r.add_argument("--tiny", action="store_true", help="tiny sizes (a CPU smoke run)")
    r.add_argument("--sections", default=",".join(n for n, _ in PLAN))
    r.add_argument("--iql-cap", type=float, default=150.0, help="seconds for the 1M IQL updates")
    r.add_argument("--d3rlpy-python", default=None)
    r.add_argument(
        "--d3rlpy-pythonpath",
        default=None,
        help="PYTHONPATH for d3rlpy's side (replaces hybridrl's)",
    )
    r.add_argument("--d3rlpy-device", default="cpu", help="cpu or cuda:0")
    s = sub.add_parser("section", help="one section (run by `run`)")
    s.add_argument("name")
    s.add_argument("--result", required=True)
    s.add_argument("--tiny", action="store_true")
    s.add_argument("--cap", type=float, default=150.0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--d3rlpy-python", default=None)
    s.add_argument("--d3rlpy-pythonpath", default=None)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "run":
        main_run(args)
    else:
        main_section(args)


if __name__ == "__main__":
    main()
