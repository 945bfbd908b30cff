"""Behaviour policies for data collection, and the portable saved-policy format.

A policy maps a batch of observations to a batch of actions::

    actions = policy.act(observations, deterministic=True, rng=np.random.default_rng(0))

Kinds shipped here:
- `RandomPolicy`: uniform over the action space.
- `CallablePolicy`: wraps a user's function ``fn(obs) -> action`` (one observation at a time,
  or batched).
- `MLPPolicy`: a saved hybridrl policy (``.npz``): an MLP with a deterministic tanh head or a
  tanh-Gaussian head, optional observation normalization, actions rescaled to the space's
  bounds. Agents export to this format, so a trained policy is usable without its agent code.
- `PendulumSwingUp`: a scripted energy-shaping controller for ``Pendulum-v1`` (a decent,
  cheap behaviour policy for demos and tests).

Use `load_policy` to turn a CLI string (``random``, a path, or ``module:function``) into one.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hybridrl.types import HybridRLError, SpaceSpec

POLICY_FORMAT_VERSION = 1


class Policy(Protocol):
    """Anything with ``act(observations, *, deterministic, rng) -> actions`` (batched)."""

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class RandomPolicy:
    """Uniform random actions (the reference policy of normalized scores)."""

    action_space: SpaceSpec

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        n = observations.shape[0]
        if self.action_space.kind == "discrete":
            assert self.action_space.n is not None
            return np.asarray(rng.integers(0, self.action_space.n, size=n))
        lo, hi = self.action_space.low_array, self.action_space.high_array
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise HybridRLError("a random policy needs a bounded action space")
        return rng.uniform(lo, hi, size=(n, *self.action_space.shape)).astype(np.float32)

    def log_prob(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray | None:
        """Uniform density: ``-sum_d log(high_d - low_d)`` (``-log n`` for discrete)."""
        n = observations.shape[0]
        if self.action_space.kind == "discrete":
            assert self.action_space.n is not None
            return np.full(n, -np.log(self.action_space.n), np.float32)
        width = self.action_space.high_array - self.action_space.low_array
        return np.full(n, -np.sum(np.log(width)), np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "random"}


@dataclass
class CallablePolicy:
    """A user's function as a policy: ``fn(obs) -> action`` for one observation, or
    ``fn(batch) -> batch of actions`` when ``batched=True``."""

    fn: Callable[[np.ndarray], Any]
    name: str = "callable"
    batched: bool = False

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        if self.batched:
            return np.asarray(self.fn(observations))
        return np.stack([np.asarray(self.fn(o)) for o in observations])

    def describe(self) -> dict[str, Any]:
        return {"kind": "callable", "name": self.name}


@dataclass
class PendulumSwingUp:
    """Energy-shaping swing-up plus a PD balancer for ``Pendulum-v1``.

    Pendulum-v1 has ``theta'' = 3g/(2l) sin(theta) + 3/(m l^2) u`` with theta = 0 upright,
    g = 10, m = l = 1 and |u| <= 2. Away from the top the controller pumps energy with
    ``u = k_e (E* - E) theta'`` where ``E = theta'^2 / 6 + (g / 2) cos(theta)`` (energy per
    unit inertia scale) and ``E* = g / 2`` is the upright energy; near the top it balances
    with ``u = -(k_p theta + k_d theta')``. Scores about -150 per 200-step episode, against
    about -1200 for random actions.
    """

    energy_gain: float = 2.0
    kp: float = 10.0
    kd: float = 2.0
    max_torque: float = 2.0

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        cos_t, sin_t, theta_dot = observations[:, 0], observations[:, 1], observations[:, 2]
        theta = np.arctan2(sin_t, cos_t)
        energy = theta_dot**2 / 6.0 + 5.0 * cos_t
        pump = self.energy_gain * (5.0 - energy) * np.sign(theta_dot + 1e-6)
        balance = -(self.kp * theta + self.kd * theta_dot)
        u = np.where(cos_t > 0.9, balance, pump)
        return np.clip(u, -self.max_torque, self.max_torque)[:, None].astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "scripted", "name": "pendulum_swingup"}


@dataclass
class MLPPolicy:
    """A saved hybridrl policy: an MLP evaluated in numpy.

    ``kind == "deterministic"``: ``a = tanh(f(s))``; ``kind == "tanh_gaussian"``: the last layer
    gives mean and log-std (clipped to ``log_std_range``), ``a = tanh(mean + std * eps)`` (or
    ``tanh(mean)`` when deterministic). Actions in [-1, 1] are then mapped affinely onto the
    action space's bounds. Observations are standardized with ``obs_mean``/``obs_std`` if set.
    """

    kernels: list[np.ndarray]
    biases: list[np.ndarray]
    kind: str
    action_low: np.ndarray
    action_high: np.ndarray
    activation: str = "relu"
    obs_mean: np.ndarray | None = None
    obs_std: np.ndarray | None = None
    log_std_range: tuple[float, float] = (-5.0, 2.0)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("deterministic", "tanh_gaussian"):
            raise HybridRLError(f"unknown policy kind '{self.kind}'")
        if self.activation not in _ACTIVATIONS:
            raise HybridRLError(f"unknown activation '{self.activation}'")

    def _head(self, observations: np.ndarray) -> np.ndarray:
        x = np.asarray(observations, dtype=np.float32)
        if self.obs_mean is not None and self.obs_std is not None:
            x = (x - self.obs_mean) / self.obs_std
        act_fn = _ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            x = x @ w + b
            if i < len(self.kernels) - 1:
                x = act_fn(x)
        return x

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        out = self._head(observations)
        if self.kind == "deterministic":
            unit = np.tanh(out)
        else:
            mean, log_std = np.split(out, 2, axis=-1)
            if deterministic:
                unit = np.tanh(mean)
            else:
                log_std = np.clip(log_std, *self.log_std_range)
                unit = np.tanh(mean + np.exp(log_std) * rng.standard_normal(mean.shape))
        scaled = self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low)
        return scaled.astype(np.float32)

    def log_prob(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray | None:
        """Log-density of ``actions`` under the stochastic head; None for a deterministic one.

        With ``u = tanh(x)``, ``x ~ N(mean, std)`` and ``a = low + (u + 1)(high - low) / 2``:
        ``log p(a) = log N(x) - sum log(1 - u^2) - sum log((high - low) / 2)``. Actions on the
        bounds are pulled inside by 1e-6 so that ``atanh`` stays finite.
        """
        if self.kind != "tanh_gaussian":
            return None
        mean, log_std = np.split(self._head(observations).astype(np.float64), 2, axis=-1)
        log_std = np.clip(log_std, *self.log_std_range)
        half = (self.action_high - self.action_low).astype(np.float64) / 2.0
        unit = np.clip(
            (np.asarray(actions, np.float64) - self.action_low) / half - 1.0, -1 + 1e-6, 1 - 1e-6
        )
        x = np.arctanh(unit)
        z = (x - mean) / np.exp(log_std)
        normal = -0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi)
        log_det = np.log1p(-(unit**2)) + np.log(half)
        return np.sum(normal - log_det, axis=-1).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "mlp", "head": self.kind, **self.info}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically as ``.npz`` (weights plus a JSON header)."""
        from hybridrl.data.io import atomic_path

        header = {
            "format_version": POLICY_FORMAT_VERSION,
            "kind": self.kind,
            "activation": self.activation,
            "num_layers": len(self.kernels),
            "log_std_range": list(self.log_std_range),
            "info": self.info,
        }
        arrays: dict[str, np.ndarray] = {"__policy__": np.array(json.dumps(header))}
        for i, (w, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            arrays[f"layer{i}/kernel"], arrays[f"layer{i}/bias"] = w, b
        arrays["action_low"], arrays["action_high"] = self.action_low, self.action_high
        if self.obs_mean is not None and self.obs_std is not None:
            arrays["obs_mean"], arrays["obs_std"] = self.obs_mean, self.obs_std
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return path

    @staticmethod
    def load(path: str | os.PathLike[str]) -> MLPPolicy:
        p = str(path)
        try:
            with np.load(p, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            header = json.loads(str(arrays["__policy__"]))
            n = int(header["num_layers"])
            return MLPPolicy(
                kernels=[arrays[f"layer{i}/kernel"] for i in range(n)],
                biases=[arrays[f"layer{i}/bias"] for i in range(n)],
                kind=header["kind"],
                activation=header["activation"],
                action_low=arrays["action_low"],
                action_high=arrays["action_high"],
                obs_mean=arrays.get("obs_mean"),
                obs_std=arrays.get("obs_std"),
                log_std_range=tuple(header.get("log_std_range", (-5.0, 2.0))),  # type: ignore[arg-type]
                info=dict(header.get("info", {})),
            )
        except FileNotFoundError as exc:
            raise HybridRLError(f"policy file {p} does not exist") from exc
        except (KeyError, ValueError, OSError, json.JSONDecodeError) as exc:
            raise HybridRLError(f"policy file {p} is not a hybridrl policy: {exc}") from exc


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "gelu": lambda x: 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))),
}


def _maze_controller(maze: str) -> Callable[[], Policy]:
    def make() -> Policy:
        from hybridrl.envs.maze import MazeWaypointController

        return MazeWaypointController(maze)

    return make


SCRIPTED_POLICIES: dict[str, Callable[[], Policy]] = {
    "pendulum_swingup": PendulumSwingUp,
    "pointmaze_umaze": _maze_controller("umaze"),
    "pointmaze_medium": _maze_controller("medium"),
    "pointmaze_large": _maze_controller("large"),
}


def load_policy(spec: str, action_space: SpaceSpec) -> Policy:
    """Turn a policy description into a policy.

    ``spec`` is ``random``; a scripted controller name (``pendulum_swingup``); a path to a saved
    policy ``.npz``; or ``package.module:function`` naming a callable ``fn(obs) -> action``.
    """
    if spec == "random":
        return RandomPolicy(action_space)
    if spec in SCRIPTED_POLICIES:
        return SCRIPTED_POLICIES[spec]()
    if spec.endswith(".npz") or os.path.exists(spec):
        return MLPPolicy.load(spec)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise HybridRLError(f"cannot import policy '{spec}': {exc}") from exc
        if not callable(fn):
            raise HybridRLError(f"policy '{spec}' is not callable")
        return CallablePolicy(fn, name=spec)
    raise HybridRLError(
        f"unknown policy '{spec}': use 'random', one of {sorted(SCRIPTED_POLICIES)}, "
        "a saved policy .npz path, or 'module:function'"
    )


def policy_from_agent(
    state: Any,
    action_space: SpaceSpec,
    *,
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
) -> MLPPolicy:
    """A portable `MLPPolicy` from an agent's tanh-Gaussian actor (SAC, CQL, Cal-QL, EDAC,
    AWAC): the trunk's Dense layers, then the ``mean`` and ``log_std`` heads side by side.

    Actors with LayerNorm or dropout in the trunk, or a state-independent std, are refused:
    the numpy policy evaluates plain ReLU MLPs.
    """
    if action_space.kind != "box":
        raise HybridRLError("policy export needs a Box action space")
    params = state.actor.params
    trunk = params.get("MLP_0", {})
    names = sorted((k for k in trunk if k.startswith("Dense_")), key=lambda k: int(k[6:]))
    dense_heads = all(
        isinstance(params.get(head), Mapping) and "kernel" in params[head]
        for head in ("mean", "log_std")
    )
    if set(trunk) != set(names) or not dense_heads:
        raise HybridRLError(
            "policy export handles plain-MLP tanh-Gaussian actors only "
            f"(actor parameters: {sorted(params)})"
        )
    kernels = [np.asarray(trunk[n]["kernel"], np.float32) for n in names]
    biases = [np.asarray(trunk[n]["bias"], np.float32) for n in names]
    kernels.append(np.concatenate([params["mean"]["kernel"], params["log_std"]["kernel"]], -1))
    biases.append(np.concatenate([params["mean"]["bias"], params["log_std"]["bias"]], -1))
    config = state.config
    log_std_range = (
        float(getattr(config, "actor_log_std_min", -20.0)),
        float(getattr(config, "actor_log_std_max", 2.0)),
    )
    mean, std = obs_stats if obs_stats is not None else (None, None)
    return MLPPolicy(
        kernels=[np.asarray(k, np.float32) for k in kernels],
        biases=[np.asarray(b, np.float32) for b in biases],
        kind="tanh_gaussian",
        action_low=action_space.low_array.astype(np.float32),
        action_high=action_space.high_array.astype(np.float32),
        obs_mean=None if mean is None else np.asarray(mean, np.float32).reshape(-1),
        obs_std=None if std is None else np.asarray(std, np.float32).reshape(-1),
        log_std_range=log_std_range,
        info=dict(info or {}),
    )
