"""Evaluating a trained policy: a run directory or a saved ``.npz`` policy, rolled out in
Gymnasium with numpy only (the same `MLPPolicy` that ``hybridrl export`` writes), with
normalized scores and an optional video. ``hybridrl eval`` is a thin shell over this module.

Evaluating a run directory exports its last checkpoint's policy in memory first, so what is
evaluated is exactly what ``hybridrl export`` would write; only that path imports jax.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from hybridrl.data.d4rl import d4rl_reference_scores
from hybridrl.envs.make import env_actions, make_env
from hybridrl.policies import MLPPolicy
from hybridrl.types import HybridRLError, SpaceSpec

VIDEO_EXTRA = "pip install 'hybridrl[video]'"


@dataclass
class PolicySource:
    """A policy and what its origin says about it.

    Attributes:
        policy: the numpy policy.
        where: the run directory or file it came from (for messages).
        env_id: the env it was trained on (run.json, or the policy header), if known.
        env_kwargs: the ``gymnasium.make`` options that run recorded (time limit, ...).
        reference_returns: ``(random, expert)`` returns that run scored with, if any.
    """

    policy: MLPPolicy
    where: str
    env_id: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    reference_returns: tuple[float, float] | None = None


def load_policy_source(target: str, *, dataset: Any = None) -> PolicySource:
    """A run directory (its latest checkpoint's policy) or a saved policy ``.npz``."""
    if os.path.isdir(target):
        from hybridrl.training.export import policy_from_run

        policy = policy_from_run(target, dataset=dataset)
    else:
        policy = MLPPolicy.load(target)
    info = policy.info
    ref = info.get("reference_returns")
    return PolicySource(
        policy=policy,
        where=target,
        env_id=info.get("env_id"),
        env_kwargs=dict(info.get("env_kwargs") or {}),
        reference_returns=(float(ref[0]), float(ref[1])) if ref else None,
    )


def reference_returns(
    source: PolicySource,
    env_id: str,
    ref_random: float | None = None,
    ref_expert: float | None = None,
) -> tuple[tuple[float, float] | None, str]:
    """``(random, expert)`` returns for normalized scores, and where they come from.

    Explicit ``ref_random``/``ref_expert`` win; then the run's own (when evaluated on the run's
    env); then the D4RL table for ``env_id``; else None (raw returns).
    """
    if (ref_random is None) != (ref_expert is None):
        raise HybridRLError("--ref-random and --ref-expert go together")
    if ref_random is not None and ref_expert is not None:
        if ref_expert == ref_random:
            raise HybridRLError("--ref-expert must differ from --ref-random")
        return (ref_random, ref_expert), "--ref-random/--ref-expert"
    if source.reference_returns is not None and env_id == source.env_id:
        return source.reference_returns, f"the run's reference returns ({source.where})"
    table = d4rl_reference_scores(env_id)
    if table is not None:
        return table, "the D4RL reference table"
    return None, "none"


def make_eval_env(source: PolicySource, env_id: str, *, render: bool = False) -> gym.Env:
    """``env_id`` made with the run's recorded options (when it is the run's env), checked
    against the policy's observation and action spaces."""
    kwargs = dict(source.env_kwargs) if env_id == source.env_id else {}
    if render:
        kwargs["render_mode"] = "rgb_array"
    try:
        env = make_env(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise HybridRLError(
            f"rendering {env_id} needs a missing dependency ({exc}); {VIDEO_EXTRA}"
        ) from exc
    obs_space = SpaceSpec.from_gym(env.observation_space)
    try:
        source.policy.check_spaces(
            int(np.prod(obs_space.shape)),
            SpaceSpec.from_gym(env.action_space),
            where=source.where,
            env=env_id,
        )
    except HybridRLError:
        env.close()
        raise
    return env


def run_episodes(
    source: PolicySource,
    env_id: str,
    episodes: int,
    *,
    seed: int = 0,
    deterministic: bool = True,
    video: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes (episode i resets with ``seed + i``; the
    stochastic policy samples from ``numpy.random.default_rng(seed)``). ``video``: also write
    every episode's rendered frames to this ``.mp4`` (atomically; needs the ``video`` extra)."""
    if episodes <= 0:
        raise HybridRLError(f"--episodes must be positive, got {episodes}")
    writer_cls = _video_writer() if video is not None else None
    if video is not None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep stdout to the results
    rng = np.random.default_rng(seed)
    returns: list[float] = []
    with contextlib.ExitStack() as stack:
        env = make_eval_env(source, env_id, render=video is not None)
        stack.callback(env.close)
        record = None
        if video is not None and writer_cls is not None:
            fps = int(env.metadata.get("render_fps") or 30)
            record = _open_video(stack, writer_cls, Path(video), fps)
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                if record is not None:
                    record(env.render())
                flat = np.asarray(obs, np.float32).reshape(1, -1)
                batch = source.policy.act(flat, deterministic=deterministic, rng=rng)
                # a Discrete env takes a Python-int-like scalar in [0, n), refused otherwise
                action = env_actions(batch, env.action_space, 1)[0]
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = bool(terminated or truncated)
            if record is not None:
                record(env.render())
            returns.append(total)
    return np.asarray(returns)


def _video_writer() -> Any:
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the mp4 backend imageio needs)
    except ImportError as exc:
        raise HybridRLError(f"--video needs imageio and imageio-ffmpeg: {VIDEO_EXTRA}") from exc
    return imageio


def _open_video(
    stack: contextlib.ExitStack[Any], imageio: Any, path: Path, fps: int
) -> Callable[[Any], None]:
    """A function that appends one rendered frame to ``path``; frames are streamed to the
    encoder (ten MuJoCo episodes held in memory would take gigabytes), and the file appears
    only when the stack closes without an error."""
    from hybridrl.data.io import atomic_path

    stack.enter_context(warnings.catch_warnings())
    # JAX warns on any fork; the writer forks only to exec ffmpeg, which is safe.
    warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
    tmp = stack.enter_context(atomic_path(path, suffix=path.suffix or ".mp4"))
    # macro_block_size=2: H.264 needs even sizes; larger blocks would rescale most renders.
    writer = stack.enter_context(
        imageio.get_writer(tmp, format="FFMPEG", fps=fps, macro_block_size=2)
    )

    def record(frame: Any) -> None:
        frame = np.asarray(frame)
        if frame.ndim != 3:
            raise HybridRLError(f"{path}: the environment rendered no RGB frames")
        writer.append_data(frame)

    return record


def score(ret: float | np.ndarray, reference: tuple[float, float] | None) -> Any:
    """``100 (R - random) / (expert - random)``, or the return itself without a reference."""
    if reference is None:
        return ret
    lo, hi = reference
    return 100.0 * (np.asarray(ret) - lo) / (hi - lo)
