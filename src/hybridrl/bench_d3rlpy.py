"""d3rlpy's side of every comparison: the one d3rlpy adapter, run in d3rlpy's own environment.

d3rlpy 2.8.1 pins ``gymnasium==1.0.0`` while hybridrl uses gymnasium 1.4, so the two cannot
share an environment. This file imports nothing from hybridrl (only the standard library at
module level; d3rlpy, torch, numpy and gymnasium inside the functions) and is run as a script,
``python -P bench_d3rlpy.py COMMAND ...``, with the Python of an environment that has d3rlpy
(``scripts/setup-compare`` makes ``.venv-compare``; `benchmarks/gpu_check.sh` builds one from
wheels on a GPU machine). ``-P`` keeps this directory (which holds hybridrl's ``types.py``)
off ``sys.path``. It lives inside the package so that an installed hybridrl finds it.

The caller's side (`measure_d3rlpy`, `worker_command`, `run_worker`, `find_d3rlpy_python`) is
here too, so that callers need neither JAX nor the rest of hybridrl to drive d3rlpy. Commands,
each printing one JSON object as its last line of standard output:

- ``throughput``: updates per second per algorithm at a fixed size (``hybridrl bench
  throughput``, `benchmarks/gpu_check.py`). Each update includes the sampling of its
  minibatch from a 100k-transition buffer (what ``fit`` does); d3rlpy's default settings per
  algorithm (e.g. CQL's Lagrangian α), best of 3 timed runs after a warm-up.
- ``train``: train one offline algorithm on an npz of plain arrays
  (``observations, actions, rewards, terminals, timeouts``, actions in the env's units) and
  evaluate it in Gymnasium every ``--eval-interval`` updates (`hybridrl.sweep.d3rlpy_trial`),
  with settings matched to hybridrl's (MinMax action scaling, CQL's fixed α).

``--device`` (``cpu`` or ``cuda:0``) is passed to d3rlpy's ``create(device=...)``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

ALGOS = ("sac", "iql", "td3_bc", "cql", "bc")
SCRIPT = Path(__file__).resolve()


# ---- the caller's side (hybridrl's environment): run this file in d3rlpy's -------------------


def find_d3rlpy_python(explicit: str | None = None) -> str | None:
    """The Python of an environment with d3rlpy: ``explicit`` (a path or a command), else the
    repository's
    ``.venv-compare`` (made by ``scripts/setup-compare``) when it exists."""
    candidates = [explicit] if explicit else []
    candidates.append(str(SCRIPT.parents[2] / ".venv-compare/bin/python"))
    for c in candidates:
        found = shutil.which(c) if c else None  # a path, or a command on PATH
        if found:
            return found
    return None


def worker_command(python: str, command: str, *args: str) -> list[str]:
    """The command line running this file's ``command`` with ``python`` (``-P``: this
    directory, which holds hybridrl's ``types.py``, stays off ``sys.path``)."""
    return [python, "-P", str(SCRIPT), command, *args]


def run_worker(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Run a `worker_command` and return the JSON object it prints last; RuntimeError with the
    end of its standard error when it fails."""
    out = subprocess.run(
        argv, capture_output=True, text=True, check=False, env=env, timeout=timeout
    )
    if out.returncode != 0:
        raise RuntimeError(f"d3rlpy worker failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure_d3rlpy(
    python: str,
    agents: list[str],
    *,
    updates: int,
    batch_size: int,
    obs_dim: int,
    act_dim: int,
    device: str = "cpu",
    hidden: list[int] | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """d3rlpy's updates/s for ``agents`` (the ``throughput`` command) in the environment of
    ``python``, with ``env`` as its environment variables if given."""
    args = {
        "--device": device,
        "--hidden": ",".join(str(h) for h in hidden or [256, 256]),
        "--agents": ",".join(agents),
        "--updates": str(updates),
        "--batch-size": str(batch_size),
        "--obs-dim": str(obs_dim),
        "--act-dim": str(act_dim),
    }
    flat = [x for kv in args.items() for x in kv]
    return run_worker(worker_command(python, "throughput", *flat), env=env, timeout=timeout)


# ---- the worker's side (d3rlpy's environment) ------------------------------------------------


def make_algo(
    name: str,
    *,
    hidden: list[int],
    batch_size: int,
    device: str,
    matched: bool,
    normalize: bool = False,
) -> Any:
    """d3rlpy's algorithm ``name`` with ``hidden`` MLPs everywhere.

    ``matched=False`` keeps d3rlpy's defaults (the throughput setting). ``matched=True`` is
    the side-by-side setting: actions scaled to [-1, 1] with a MinMax action scaler (hybridrl's
    agents act in [-1, 1]), an observation standardiser when ``normalize``, and CQL's α fixed.
    """
    import d3rlpy

    enc = d3rlpy.models.VectorEncoderFactory(hidden_units=hidden)
    common: dict[str, Any] = {"batch_size": batch_size}
    if matched:
        common["observation_scaler"] = (
            d3rlpy.preprocessing.StandardObservationScaler() if normalize else None
        )
        common["action_scaler"] = d3rlpy.preprocessing.MinMaxActionScaler()
    if name == "bc":
        return d3rlpy.algos.BCConfig(encoder_factory=enc, **common).create(device=device)
    common["actor_encoder_factory"] = enc
    common["critic_encoder_factory"] = enc
    if name == "sac":
        return d3rlpy.algos.SACConfig(**common).create(device=device)
    if name == "td3_bc":
        return d3rlpy.algos.TD3PlusBCConfig(**common).create(device=device)
    if name == "iql":
        return d3rlpy.algos.IQLConfig(value_encoder_factory=enc, **common).create(device=device)
    if name == "cql":
        if matched:
            # d3rlpy's default tunes α with a Lagrange multiplier (threshold 10); hybridrl's CQL,
            # as the official MuJoCo setting (Kumar et al., 2020), keeps α = 5 fixed. alpha lr 0
            # with initial α 1 leaves d3rlpy's penalty at conservative_weight 5 × (gap −
            # threshold), whose constant shift has no gradient: the same objective.
            common["alpha_learning_rate"] = 0.0
        return d3rlpy.algos.CQLConfig(**common).create(device=device)
    raise SystemExit(f"unknown algorithm {name!r}; known: {', '.join(ALGOS)}")


def random_dataset(n: int, obs_dim: int, act_dim: int, seed: int) -> Any:
    """``n`` random transitions in episodes of 1000 steps (the throughput buffer)."""
    import d3rlpy
    import numpy as np

    rng = np.random.default_rng(seed)
    timeouts = np.zeros(n, np.float32)
    timeouts[999::1000] = 1.0
    return d3rlpy.dataset.MDPDataset(
        observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        terminals=np.zeros(n, np.float32),
        timeouts=timeouts,
    )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def measure(
    name: str,
    updates: int,
    batch_size: int,
    obs_dim: int,
    act_dim: int,
    *,
    device: str = "cpu",
    hidden: list[int] | None = None,
) -> float:
    """Updates per second of d3rlpy's ``name`` (sampling included), best of 3 after warm-up."""
    import torch

    dataset = random_dataset(100_000, obs_dim, act_dim, 0)
    algo = make_algo(
        name, hidden=hidden or [256, 256], batch_size=batch_size, device=device, matched=False
    )
    algo.build_with_dataset(dataset)  # an MDPDataset is d3rlpy's ReplayBuffer

    def run(n: int) -> float:
        _sync(device)
        start = time.perf_counter()
        for _ in range(n):
            algo.update(dataset.sample_transition_batch(batch_size))
        _sync(device)
        return n / (time.perf_counter() - start)

    torch.manual_seed(0)
    run(max(10, updates // 10))
    return max(run(updates) for _ in range(3))


def evaluate(algo: Any, env_id: str, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of ``algo.predict`` on ``episodes`` Gymnasium episodes."""
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            action = algo.predict(np.asarray(obs, np.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def cmd_throughput(args: argparse.Namespace) -> dict[str, Any]:
    hidden = [int(h) for h in args.hidden.split(",")]
    return {
        name: measure(
            name,
            args.updates,
            args.batch_size,
            args.obs_dim,
            args.act_dim,
            device=args.device,
            hidden=hidden,
        )
        for name in args.agents.split(",")
    }


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    import d3rlpy
    import numpy as np

    d3rlpy.seed(args.seed)
    with np.load(args.data) as f:
        data = {k: f[k] for k in f.files}
    dataset = d3rlpy.dataset.MDPDataset(
        **{
            k: data[k].astype(np.float32)
            for k in ("observations", "actions", "rewards", "terminals", "timeouts")
        }
    )
    hidden = [int(h) for h in args.hidden.split(",")]
    algo = make_algo(
        args.algo,
        hidden=hidden,
        batch_size=args.batch_size,
        device=args.device,
        matched=True,
        normalize=args.normalize_observations,
    )
    # what d3rlpy's fit() does before training: fit the scalers on the dataset
    for scaler in (algo.config.observation_scaler, algo.config.action_scaler):
        if scaler is not None and not scaler.built:
            scaler.fit_with_transition_picker(dataset.episodes, dataset.transition_picker)
    algo.build_with_dataset(dataset)
    evals: list[dict[str, Any]] = []
    start = time.perf_counter()
    train_time = 0.0
    done = 0
    while done < args.steps:
        n = min(args.eval_interval, args.steps - done)
        t0 = time.perf_counter()
        for _ in range(n):
            algo.update(dataset.sample_transition_batch(args.batch_size))
        _sync(args.device)
        train_time += time.perf_counter() - t0
        done += n
        returns = evaluate(algo, args.env, args.eval_episodes, args.seed + 10_000)
        evals.append(
            {
                "update": done,
                "return_mean": float(np.mean(returns)),
                "return_std": float(np.std(returns)),
                "time_s": round(time.perf_counter() - start, 3),
            }
        )
    return {
        "evaluations": evals,
        "train_time_s": train_time,
        "wall_time_s": time.perf_counter() - start,
    }


def parser() -> argparse.ArgumentParser:
    """The command line (``throughput`` and ``train``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="cpu", help="cpu or cuda:0 (d3rlpy's create())")
    common.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    common.add_argument("--hidden", default="256,256")
    common.add_argument("--batch-size", type=int, default=256)
    t = sub.add_parser("throughput", parents=[common], help="updates/s per algorithm")
    t.add_argument("--agents", default="sac,iql,td3_bc,cql")
    t.add_argument("--updates", type=int, default=200)
    t.add_argument("--obs-dim", type=int, default=17)
    t.add_argument("--act-dim", type=int, default=6)
    r = sub.add_parser("train", parents=[common], help="train on an npz, evaluate in Gymnasium")
    r.add_argument("--data", required=True)
    r.add_argument("--env", required=True)
    r.add_argument("--algo", required=True, choices=ALGOS)
    r.add_argument("--steps", type=int, required=True)
    r.add_argument("--eval-interval", type=int, required=True)
    r.add_argument("--eval-episodes", type=int, default=10)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--normalize-observations", action="store_true")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    import d3rlpy
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    run = cmd_throughput if args.command == "throughput" else cmd_train
    out = run(args)
    head = {"d3rlpy_version": d3rlpy.__version__, "torch": torch.__version__}
    print(json.dumps({**head, "device": args.device, **out}))


if __name__ == "__main__":
    main()
