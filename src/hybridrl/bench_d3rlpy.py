"""d3rlpy side of ``hybridrl bench throughput``; runs in d3rlpy's own environment.

d3rlpy pins ``gymnasium==1.0.0``, so it cannot share hybridrl's environment; this file imports
nothing from hybridrl and is run as a script by `hybridrl.bench` with the Python of the
environment that has d3rlpy (``scripts/setup-compare`` makes ``.venv-compare``). It prints one
JSON object: updates per second per algorithm, each update including the sampling of its
minibatch (what ``fit`` does).
"""

from __future__ import annotations

import argparse
import json
import time


def _dataset(n: int, obs_dim: int, act_dim: int, seed: int):  # type: ignore[no-untyped-def]
    import d3rlpy
    import numpy as np

    rng = np.random.default_rng(seed)
    terminals = np.zeros(n, np.float32)
    timeouts = np.zeros(n, np.float32)
    timeouts[999::1000] = 1.0
    return d3rlpy.dataset.MDPDataset(
        observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
    )


def _algo(name: str, batch_size: int):  # type: ignore[no-untyped-def]
    import d3rlpy

    enc = d3rlpy.models.VectorEncoderFactory(hidden_units=[256, 256])
    common = {"batch_size": batch_size, "actor_encoder_factory": enc}
    if name == "sac":
        return d3rlpy.algos.SACConfig(critic_encoder_factory=enc, **common).create(device="cpu")
    if name == "td3_bc":
        return d3rlpy.algos.TD3PlusBCConfig(critic_encoder_factory=enc, **common).create(
            device="cpu"
        )
    if name == "iql":
        return d3rlpy.algos.IQLConfig(
            critic_encoder_factory=enc, value_encoder_factory=enc, **common
        ).create(device="cpu")
    if name == "cql":
        return d3rlpy.algos.CQLConfig(critic_encoder_factory=enc, **common).create(device="cpu")
    raise ValueError(name)


def measure(name: str, updates: int, batch_size: int, obs_dim: int, act_dim: int) -> float:
    """Updates per second of d3rlpy's ``name`` (sampling included), best of 3 after warm-up."""
    import torch

    dataset = _dataset(100_000, obs_dim, act_dim, 0)
    algo = _algo(name, batch_size)
    algo.build_with_dataset(dataset)
    buffer = dataset  # an MDPDataset is d3rlpy's ReplayBuffer

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            batch = buffer.sample_transition_batch(batch_size)
            algo.update(batch)
        return n / (time.perf_counter() - start)

    torch.manual_seed(0)
    run(max(10, updates // 10))
    return max(run(updates) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", default="sac,iql,td3_bc,cql")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--obs-dim", type=int, default=17)
    parser.add_argument("--act-dim", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    import d3rlpy
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = {
        name: measure(name, args.updates, args.batch_size, args.obs_dim, args.act_dim)
        for name in args.agents.split(",")
    }
    print(json.dumps({"d3rlpy_version": d3rlpy.__version__, "torch": torch.__version__, **out}))


if __name__ == "__main__":
    main()
