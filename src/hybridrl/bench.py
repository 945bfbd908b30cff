"""``hybridrl bench throughput``: agent updates per second, beside d3rlpy in the same run.

The standard size (issue "Learning core"): 2x256 MLPs, batch 256, 17-dim observations,
6-dim actions (HalfCheetah's shapes), uniform sampling from a 100k-transition buffer included
in every update. hybridrl runs ``chunk`` updates per compiled ``lax.scan``; the timing is the
best of 3 chunks after a warm-up (compilation excluded, as it happens once per run).

d3rlpy pins ``gymnasium==1.0.0`` and so lives in its own environment: when one is found
(``--d3rlpy-python``, else ``.venv-compare/bin/python`` made by ``scripts/setup-compare``),
`hybridrl.bench_d3rlpy` (the one d3rlpy adapter, also behind the sweep's ``runner = "d3rlpy"``
and ``benchmarks/gpu_check.sh``) is run there with the same sizes and the table shows the ratio.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridrl.agents import get_agent
from hybridrl.bench_d3rlpy import find_d3rlpy_python, measure_d3rlpy
from hybridrl.data.replay import from_dataset
from hybridrl.data.transitions import Transitions
from hybridrl.training.updates import scan_updates

COMPARED = ("sac", "iql", "td3_bc", "cql")


def standard_config(name: str) -> Any:
    """The agent's default config: 2x256 networks for most agents, the paper's 3x256 (and
    ensemble sizes) for edac, rebrac and ro2o, whose defaults are those."""
    agent = get_agent(name)
    return agent.Config()


def random_buffer(n: int, obs_dim: int, act_dim: int) -> Any:
    """``n`` random transitions (1% terminal; Monte Carlo returns and next actions for agents
    that read them) as a device replay buffer: what every throughput measurement samples
    from."""
    rng = np.random.default_rng(0)
    t = Transitions(
        observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        terminals=(rng.random(n) < 0.01).astype(np.float32),
        timeouts=np.zeros(n, np.float32),
        extras={
            "mc_returns": rng.normal(size=n).astype(np.float32),
            "next_actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
            "has_next_action": np.ones(n, np.float32),
        },
    )
    return from_dataset(t)


def measure_hybridrl(
    name: str,
    *,
    chunk: int = 200,
    batch_size: int = 256,
    obs_dim: int = 17,
    act_dim: int = 6,
    config: Any = None,
) -> float:
    """Updates per second of hybridrl's agent ``name`` (best of 3 chunks after warm-up);
    ``config`` replaces the standard one (e.g. tiny networks for a CPU smoke run)."""
    agent = get_agent(name)
    config = standard_config(name) if config is None else config
    state = agent.init(config, jax.random.PRNGKey(0), obs_dim, act_dim)
    buffer = random_buffer(100_000, obs_dim, act_dim)
    key = jax.random.PRNGKey(1)
    state, m = scan_updates(
        agent.update, state, buffer, key, num_updates=chunk, batch_size=batch_size
    )
    jax.block_until_ready(m)
    best = 0.0
    for i in range(3):
        start = time.perf_counter()
        state, m = scan_updates(
            agent.update,
            state,
            buffer,
            jax.random.PRNGKey(i + 2),
            num_updates=chunk,
            batch_size=batch_size,
        )
        jax.block_until_ready(m)
        best = max(best, chunk / (time.perf_counter() - start))
    return best


def update_gflops(
    name: str, *, batch_size: int = 256, obs_dim: int = 17, act_dim: int = 6, config: Any = None
) -> float:
    """XLA's count of floating-point operations of one update (both branches of a ``cond``
    are counted, so TD3-style delayed actors are over-counted by about half an actor step)."""
    agent = get_agent(name)
    config = standard_config(name) if config is None else config
    state = agent.init(config, jax.random.PRNGKey(0), obs_dim, act_dim)
    n = batch_size * int(getattr(state.config, "utd_ratio", 1))
    batch = jax.tree_util.tree_map(lambda x: x[:n], random_buffer(n, obs_dim, act_dim).data)
    compiled = jax.jit(agent.update).lower(state, batch, jax.random.PRNGKey(0)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float((cost or {}).get("flops", 0.0)) / 1e9


def matmul_peak_gflops(size: int = 256, repeats: int = 1000) -> float:
    """Sustained GFLOP/s of chained ``size``-square matmuls: the ceiling for 2x256 MLPs."""
    w = jnp.full((size, size), 1.0 / size, jnp.float32)
    chain = jax.jit(lambda x: jax.lax.fori_loop(0, repeats, lambda _, y: jnp.tanh(y @ w), x))
    x = jnp.ones((size, size), jnp.float32)
    chain(x).block_until_ready()
    start = time.perf_counter()
    chain(x).block_until_ready()
    return repeats * 2 * size**3 / (time.perf_counter() - start) / 1e9


# GFLOP of the standard-size CQL update (XLA's count): the costliest agent a full chunk is
# measured at.
CHUNK_REFERENCE_GFLOP = 8.0


def agent_chunk(chunk: int, gflop_per_update: float, minimum: int = 10) -> int:
    """Updates per timed chunk: ``chunk``, fewer (down to ``minimum``) for an agent whose
    update costs more than `CHUNK_REFERENCE_GFLOP`."""
    if gflop_per_update <= CHUNK_REFERENCE_GFLOP:
        return chunk
    return min(chunk, max(minimum, int(chunk * CHUNK_REFERENCE_GFLOP / gflop_per_update)))


def throughput_table(
    agents: list[str],
    *,
    chunk: int = 200,
    batch_size: int = 256,
    d3rlpy_python: str | None = None,
    d3rlpy_updates: int = 200,
    progress: bool = True,
) -> tuple[str, dict[str, Any]]:
    """Measure and format the table (markdown) and the raw numbers."""
    results: dict[str, Any] = {"device": str(jax.devices()[0]), "hybridrl": {}, "d3rlpy": {}}
    results["gflops_per_update"] = {name: update_gflops(name) for name in agents}
    results["chunk"] = {}
    for name in agents:
        # Chunks hold about as much arithmetic as `chunk` CQL updates: a full-size RO2O update
        # (~95 GFLOP, under 1/s on a CPU) would otherwise take minutes per chunk.
        gflop = results["gflops_per_update"][name]
        n = results["chunk"][name] = agent_chunk(chunk, gflop)
        if progress:
            print(f"hybridrl {name} ({n} updates per chunk) ...", file=sys.stderr, flush=True)
        results["hybridrl"][name] = measure_hybridrl(name, chunk=n, batch_size=batch_size)
        if progress:
            print(f"  {results['hybridrl'][name]:,.0f} updates/s", file=sys.stderr, flush=True)
    python = find_d3rlpy_python(d3rlpy_python)
    compared = [a for a in agents if a in COMPARED]
    if python and compared:
        if progress:
            print(f"d3rlpy {', '.join(compared)} ({python}) ...", file=sys.stderr, flush=True)
        results["d3rlpy"] = measure_d3rlpy(
            python,
            compared,
            updates=d3rlpy_updates,
            batch_size=batch_size,
            obs_dim=17,
            act_dim=6,
        )
    # Where the hardware sets the limit: FLOPs per update against sustained matmul speed.
    results["matmul_peak_gflops"] = peak = matmul_peak_gflops()
    lines = [
        "| agent | hybridrl updates/s | d3rlpy updates/s | ratio | GFLOP/update | "
        "hybridrl % of matmul peak | ratio ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in agents:
        ours = results["hybridrl"][name]
        theirs = results["d3rlpy"].get(name)
        gflop = results["gflops_per_update"][name]
        ratio = f"{ours / theirs:.1f}x" if theirs else "-"
        theirs_s = f"{theirs:,.0f}" if theirs else "-"
        # at 100% of peak hybridrl would run peak / gflop updates/s
        ceiling = f"{peak / gflop / theirs:.1f}x" if theirs and gflop else "-"
        lines.append(
            f"| {name} | {ours:,.0f} | {theirs_s} | {ratio} | {gflop:.2f} | "
            f"{100 * ours * gflop / peak:.0f}% | {ceiling} |"
        )
    header = (
        f"each agent's default networks (2x256; edac, rebrac, ro2o 3x256), batch 256, obs 17, "
        f"act 6; device {results['device']}; "
        f"{os.cpu_count()} CPUs visible; sustained 256x256 matmul {peak:.0f} GFLOP/s"
    )
    if results["d3rlpy"]:
        header += (
            f"; d3rlpy {results['d3rlpy'].get('d3rlpy_version')} "
            f"(torch {results['d3rlpy'].get('torch')})"
        )
    return header + "\n\n" + "\n".join(lines), results
