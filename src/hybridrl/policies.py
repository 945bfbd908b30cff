"""Behaviour policies for data collection, and the portable saved-policy format.

A policy maps a batch of observations to a batch of actions::

    actions = policy.act(observations, deterministic=True, rng=np.random.default_rng(0))

Kinds shipped here:
- `RandomPolicy`: uniform over the action space.
- `CallablePolicy`: wraps a user's function ``fn(obs) -> action`` (one observation at a time,
  or batched).
- `MLPPolicy`: a saved hybridrl policy (``.npz``, no pickle): an MLP (optionally with
  LayerNorm) with a deterministic tanh head, a tanh-Gaussian head, a Gaussian head (state-
  dependent or free log-std), PPO's linear Gaussian head or a categorical head (Discrete
  actions), optional observation normalization (and clip), Box actions rescaled to the
  space's bounds. Every agent exports to this format (`hybridrl.training.export`, ``hybridrl
  export RUN_DIR``), so a trained policy is usable with numpy alone: this module never imports
  jax (only `load_policy` of a run directory does, to export it).
- `PendulumSwingUp`: a scripted energy-shaping controller for ``Pendulum-v1`` (a decent,
  cheap behaviour policy for demos and tests).

Use `load_policy` to turn a CLI string (``random``, a path, a run directory, or
``module:function``) into one.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hybridrl.types import HybridRLError, SpaceSpec

POLICY_FORMAT_VERSION = 3
"""The newest format this module reads and writes. 1: plain MLPs, deterministic or
state-dependent tanh-Gaussian heads; 2: LayerNorm, state-independent std, the ``gaussian``
head; 3: the ``linear_gaussian`` and ``categorical`` heads (PPO, PROPS), Discrete action spaces
(``num_actions``), ``obs_clip`` and an unclipped log-std (``log_std_range: null``). `MLPPolicy.save`
writes the lowest version that holds the policy, so an older hybridrl still reads what it can."""
POLICY_KINDS = ("deterministic", "tanh_gaussian", "gaussian", "linear_gaussian", "categorical")
_VERSION_3_KINDS = ("linear_gaussian", "categorical")


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
    """A saved hybridrl policy: an MLP evaluated in numpy (no jax, no training code).

    The trunk is ``[Dense -> LayerNorm? -> activation] * (n - 1)`` and a last Dense layer
    (dropout is the identity at act time, so it has no place here). Heads (``kind``):

    * ``"deterministic"``: ``a = tanh(f(s))`` (TD3, TD3+BC, BC-MSE, IQL's deterministic
      actor); ``deterministic=False`` gives the same action: exploration noise belongs to the
      collector (`hybridrl.data.collect.NoiseConfig`).
    * ``"tanh_gaussian"``: ``a = tanh(mean + std * eps)``, ``tanh(mean)`` when deterministic
      (SAC, CQL, Cal-QL, EDAC).
    * ``"gaussian"``: ``a = clip(tanh(mean) + std * eps, -1, 1)``, ``tanh(mean)`` when
      deterministic: the unsquashed Gaussian of IQL, AWAC and BC.
    * ``"linear_gaussian"``: ``a = clip(mean + std * eps, -1, 1)``, ``clip(mean, -1, 1)`` when
      deterministic: PPO's (and PROPS') Gaussian, no tanh anywhere.
    * ``"categorical"``: the last layer gives ``num_actions`` logits; ``a = argmax`` when
      deterministic, else a sample of ``softmax(logits)``; actions are int64 indices in
      ``[0, num_actions)`` for a Discrete space (``action_low``/``action_high`` are empty).

    ``log_std`` is the last layer's second half (state-dependent) or, when ``log_std`` is set,
    one free value per action dimension (state-independent); either way it is clipped to
    ``log_std_range`` (None: not clipped, as PPO's). Box actions in [-1, 1] are mapped affinely
    onto ``[action_low, action_high]``. Observations are standardized with
    ``obs_mean``/``obs_std`` if set, then clipped to ``±obs_clip`` if set.
    """

    kernels: list[np.ndarray]
    biases: list[np.ndarray]
    kind: str
    action_low: np.ndarray
    action_high: np.ndarray
    activation: str = "relu"
    obs_mean: np.ndarray | None = None
    obs_std: np.ndarray | None = None
    log_std_range: tuple[float, float] | None = (-5.0, 2.0)
    info: dict[str, Any] = field(default_factory=dict)
    # (scale, bias) of the LayerNorm after each hidden Dense layer; None: no LayerNorm.
    layer_norms: list[tuple[np.ndarray, np.ndarray]] | None = None
    layer_norm_eps: float = 1e-6  # flax.linen.LayerNorm's default
    log_std: np.ndarray | None = None
    # "categorical" only: the size of the Discrete action space (the last layer's width).
    num_actions: int | None = None
    # Standardized observations are clipped to [-obs_clip, obs_clip] (PPO's observation_clip).
    obs_clip: float | None = None
    # Run-time only (never saved): every Dense layer and LayerNorm sum in one fixed order with
    # plain IEEE multiplies and adds instead of BLAS, whose kernel (chosen for the host CPU at
    # run time) changes the rounding, so the same policy gives bit-identical actions on any
    # x86-64 CPU (`portable_matmul`). About 5x slower per action than BLAS at batch 1.
    portable: bool = False

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS:
            raise HybridRLError(f"unknown policy kind '{self.kind}'; kinds: {POLICY_KINDS}")
        if self.activation not in _ACTIVATIONS:
            raise HybridRLError(f"unknown activation '{self.activation}'")
        if self.layer_norms is not None and len(self.layer_norms) != len(self.kernels) - 1:
            raise HybridRLError(
                f"{len(self.layer_norms)} LayerNorms for {len(self.kernels) - 1} hidden layers"
            )
        width = int(np.shape(self.kernels[-1])[-1])
        if self.kind == "categorical":
            if self.num_actions is None or self.num_actions != width:
                raise HybridRLError(
                    f"a categorical policy needs num_actions equal to its last layer's width "
                    f"({width}); got {self.num_actions}"
                )
        elif self.num_actions is not None:
            raise HybridRLError(f"num_actions is for categorical policies, not '{self.kind}'")
        if self.obs_clip is not None and not self.obs_clip > 0:
            raise HybridRLError(f"obs_clip must be positive, got {self.obs_clip}")

    @property
    def observation_dim(self) -> int:
        return int(self.kernels[0].shape[0])

    @property
    def action_dim(self) -> int:
        """The size of a Box action (1 for a categorical policy: one index)."""
        if self.kind == "categorical":
            return 1
        return int(np.asarray(self.action_low).size)

    @property
    def format_version(self) -> int:
        """The lowest file format version that holds this policy (what `save` writes)."""
        v3 = self.kind in _VERSION_3_KINDS or self.obs_clip is not None
        return 3 if v3 or self.log_std_range is None else 2

    def _head(self, observations: np.ndarray) -> np.ndarray:
        x = np.asarray(observations, dtype=np.float32)
        if self.obs_mean is not None and self.obs_std is not None:
            x = (x - self.obs_mean) / self.obs_std
        if self.obs_clip is not None:
            x = np.clip(x, -self.obs_clip, self.obs_clip)
        act_fn = _ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            x = (portable_matmul(x, w) if self.portable else x @ w) + b
            if i < len(self.kernels) - 1:
                if self.layer_norms is not None:
                    x = _layer_norm(
                        x, *self.layer_norms[i], self.layer_norm_eps, portable=self.portable
                    )
                x = act_fn(x)
        return x

    def _mean_log_std(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._head(observations)
        if self.log_std is not None:
            mean, log_std = out, np.broadcast_to(self.log_std, out.shape)
        else:
            mean, log_std = np.split(out, 2, axis=-1)
        if self.log_std_range is None:
            return mean, log_std
        return mean, np.clip(log_std, *self.log_std_range)

    def _log_softmax(self, observations: np.ndarray) -> np.ndarray:
        logits = self._head(observations).astype(np.float64)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        if self.kind == "categorical":
            if deterministic:  # ties go to the first index, as jnp.argmax
                return np.argmax(self._head(observations), axis=-1).astype(np.int64)
            # inverse-CDF sampling, one uniform per row
            probs = np.exp(self._log_softmax(observations))
            cdf = np.cumsum(probs, axis=-1)
            u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
            return np.minimum((cdf <= u).sum(axis=-1), probs.shape[-1] - 1).astype(np.int64)
        if self.kind == "deterministic":
            unit = np.tanh(self._head(observations))
        else:
            mean, log_std = self._mean_log_std(observations)
            center = mean if self.kind == "linear_gaussian" else np.tanh(mean)
            if deterministic:
                unit = np.clip(center, -1.0, 1.0) if self.kind == "linear_gaussian" else center
            elif self.kind == "tanh_gaussian":
                unit = np.tanh(mean + np.exp(log_std) * rng.standard_normal(mean.shape))
            else:
                noise = np.exp(log_std) * rng.standard_normal(mean.shape)
                unit = np.clip(center + noise, -1.0, 1.0)
        scaled = self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low)
        return scaled.astype(np.float32)

    def log_prob(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray | None:
        """Log-density of ``actions`` (in the action space's units) under the stochastic
        head; None for a deterministic one.

        With ``u = (a - low) / half - 1`` the action in [-1, 1] and ``half = (high - low) / 2``:
        ``"tanh_gaussian"``: ``x = atanh(u)``, ``x ~ N(mean, std)``,
        ``log p(a) = log N(x) - sum log(1 - u^2) - sum log(half)`` (actions on the bounds are
        pulled inside by 1e-6 so that ``atanh`` stays finite); ``"gaussian"``:
        ``log p(a) = log N(u; tanh(mean), std) - sum log(half)`` (the density of the
        unclipped sample, as the agent's own ``log_prob``); ``"linear_gaussian"``: the same
        with ``mean`` for ``tanh(mean)``; ``"categorical"``: ``log softmax(logits)[a]`` for
        the integer actions ``a`` (shape (N,) or (N, 1)).
        """
        if self.kind == "deterministic":
            return None
        if self.kind == "categorical":
            index = np.asarray(actions).reshape(-1).astype(np.int64)
            log_p = self._log_softmax(observations)
            return np.take_along_axis(log_p, index[:, None], axis=-1)[:, 0].astype(np.float32)
        mean, log_std = (v.astype(np.float64) for v in self._mean_log_std(observations))
        half = (self.action_high - self.action_low).astype(np.float64) / 2.0
        unit = (np.asarray(actions, np.float64) - self.action_low) / half - 1.0
        if self.kind == "tanh_gaussian":
            unit = np.clip(unit, -1 + 1e-6, 1 - 1e-6)
            x, log_det = np.arctanh(unit), np.log1p(-(unit**2)) + np.log(half)
        else:
            center = mean if self.kind == "linear_gaussian" else np.tanh(mean)
            x, mean, log_det = unit, center, np.log(half) + np.zeros_like(unit)
        z = (x - mean) / np.exp(log_std)
        normal = -0.5 * z**2 - log_std - 0.5 * np.log(2 * np.pi)
        return np.sum(normal - log_det, axis=-1).astype(np.float32)

    def check_spaces(
        self, observation_dim: int | None, action_space: SpaceSpec, *, where: str, env: str
    ) -> None:
        """Refuse an environment this policy was not made for (one line naming ``where``)."""
        if observation_dim is not None and observation_dim != self.observation_dim:
            raise HybridRLError(
                f"policy {where} takes {self.observation_dim}-dim observations; {env} gives "
                f"{observation_dim}"
            )
        if self.kind == "categorical":
            if action_space.kind != "discrete" or action_space.n != self.num_actions:
                raise HybridRLError(
                    f"policy {where} acts in Discrete({self.num_actions}); {env}'s action space "
                    f"is {action_space.describe()}"
                )
            return
        if action_space.kind != "box" or tuple(action_space.shape) != np.shape(self.action_low):
            raise HybridRLError(
                f"policy {where} acts in a Box of shape {np.shape(self.action_low)}; {env}'s "
                f"action space is {action_space.describe()}"
            )
        same = np.allclose(action_space.low_array, self.action_low) and np.allclose(
            action_space.high_array, self.action_high
        )
        if not same:
            raise HybridRLError(
                f"policy {where} acts in [{self.action_low.tolist()}, "
                f"{self.action_high.tolist()}]; {env}'s action space is "
                f"{action_space.describe()}"
            )

    def describe(self) -> dict[str, Any]:
        portable = {"inference": "portable"} if self.portable else {}
        return {"kind": "mlp", "head": self.kind, **self.info, **portable}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically as ``.npz`` (weights plus a JSON header)."""
        from hybridrl.data.io import atomic_path

        header: dict[str, Any] = {
            "format_version": self.format_version,
            "kind": self.kind,
            "activation": self.activation,
            "num_layers": len(self.kernels),
            "log_std_range": None if self.log_std_range is None else list(self.log_std_range),
            "layer_norm": self.layer_norms is not None,
            "layer_norm_eps": self.layer_norm_eps,
            "state_independent_std": self.log_std is not None,
            "info": self.info,
        }
        if self.num_actions is not None:
            header["num_actions"] = int(self.num_actions)
        if self.obs_clip is not None:
            header["obs_clip"] = float(self.obs_clip)
        arrays: dict[str, np.ndarray] = {"__policy__": np.array(json.dumps(header))}
        for i, (w, b) in enumerate(zip(self.kernels, self.biases, strict=True)):
            arrays[f"layer{i}/kernel"], arrays[f"layer{i}/bias"] = w, b
        for i, (scale, bias) in enumerate(self.layer_norms or ()):
            arrays[f"layer{i}/ln_scale"], arrays[f"layer{i}/ln_bias"] = scale, bias
        if self.log_std is not None:
            arrays["log_std"] = self.log_std
        if self.kind != "categorical":
            arrays["action_low"], arrays["action_high"] = self.action_low, self.action_high
        if self.obs_mean is not None and self.obs_std is not None:
            arrays["obs_mean"], arrays["obs_std"] = self.obs_mean, self.obs_std
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        return path

    @staticmethod
    def load(path: str | os.PathLike[str]) -> MLPPolicy:
        """Read a policy file of any format version up to `POLICY_FORMAT_VERSION` (version 1,
        plain MLPs with a deterministic or state-dependent tanh-Gaussian head, reads as is;
        fields a version lacks take their defaults)."""
        p = str(path)
        try:
            with np.load(p, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError as exc:
            raise HybridRLError(f"policy file {p} does not exist") from exc
        except (ValueError, OSError) as exc:
            raise HybridRLError(f"policy file {p} is not an .npz file: {exc}") from exc
        if "__policy__" not in arrays:
            raise HybridRLError(
                f"policy file {p} is not a hybridrl policy (no '__policy__' header; "
                f"arrays: {', '.join(sorted(arrays)[:6])})"
            )
        try:
            header = json.loads(str(arrays["__policy__"]))
            version = int(header.get("format_version", 1))
        except (ValueError, TypeError, AttributeError) as exc:
            raise HybridRLError(f"policy file {p}: unreadable '__policy__' header: {exc}") from exc
        if version > POLICY_FORMAT_VERSION:
            raise HybridRLError(
                f"policy file {p} has format version {version}; this hybridrl reads up to "
                f"{POLICY_FORMAT_VERSION} (upgrade hybridrl)"
            )
        try:
            n = int(header["num_layers"])
            norms = None
            if header.get("layer_norm", False):
                norms = [
                    (arrays[f"layer{i}/ln_scale"], arrays[f"layer{i}/ln_bias"])
                    for i in range(n - 1)
                ]
            kind = header["kind"]
            log_std_range = header.get("log_std_range", (-5.0, 2.0))
            num_actions = header.get("num_actions")
            obs_clip = header.get("obs_clip")
            empty = np.zeros(0, np.float32)
            box = kind != "categorical"
            return MLPPolicy(
                kernels=[arrays[f"layer{i}/kernel"] for i in range(n)],
                biases=[arrays[f"layer{i}/bias"] for i in range(n)],
                kind=kind,
                activation=header["activation"],
                action_low=arrays["action_low"] if box else empty,
                action_high=arrays["action_high"] if box else empty,
                obs_mean=arrays.get("obs_mean"),
                obs_std=arrays.get("obs_std"),
                log_std_range=None
                if log_std_range is None
                else (float(log_std_range[0]), float(log_std_range[1])),
                info=dict(header.get("info", {})),
                layer_norms=norms,
                layer_norm_eps=float(header.get("layer_norm_eps", 1e-6)),
                log_std=arrays["log_std"] if header.get("state_independent_std") else None,
                num_actions=None if num_actions is None else int(num_actions),
                obs_clip=None if obs_clip is None else float(obs_clip),
            )
        except KeyError as exc:
            raise HybridRLError(
                f"policy file {p} is not a hybridrl policy: no field {exc}"
            ) from exc
        except (HybridRLError, ValueError, TypeError) as exc:
            raise HybridRLError(f"policy file {p} is not a valid hybridrl policy: {exc}") from exc


def portable_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for 2-d ``x`` (N, K) and ``w`` (K, J), summed over K in index order with one
    IEEE multiply and one add per term: the result depends on the inputs only, not on the
    CPU (BLAS picks a kernel per CPU model at run time, e.g. OpenBLAS's Haswell, Zen or
    SkylakeX, and each blocks and vectorises the sum differently, so the last bits differ).

    ``np.add.reduce`` over the middle axis of the (N, K, J) products accumulates row by row,
    elementwise over J, when J is the contiguous axis and J > 1; with J = 1 numpy would sum
    the contiguous K axis pairwise in SIMD blocks instead, so a zero column is added and
    dropped. Rows go in chunks to bound the (N, K, J) temporary."""
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim == 1:
        return portable_matmul(x[None], w)[0]
    width = w.shape[1]
    if width == 1:
        w = np.concatenate([w, np.zeros_like(w)], axis=1)
    chunk = max(1, (1 << 22) // max(1, w.shape[0] * w.shape[1]))
    out = [
        np.add.reduce(x[i : i + chunk, :, None] * w[None], axis=1)
        for i in range(0, max(len(x), 1), chunk)
    ]
    return np.concatenate(out, axis=0)[:, :width] if out else np.zeros((0, width), x.dtype)


def _layer_norm(
    x: np.ndarray, scale: np.ndarray, bias: np.ndarray, eps: float, *, portable: bool = False
) -> np.ndarray:
    """flax's LayerNorm over the last axis: ``(x - mean) / sqrt(var + eps) * scale + bias``.
    ``portable``: the sums over the features go through `portable_matmul` (numpy's own
    reductions vectorise their partial sums by CPU)."""
    x64 = x.astype(np.float64)
    if portable:
        ones = np.full((x64.shape[-1], 1), 1.0 / x64.shape[-1])
        mean = portable_matmul(x64, ones)
        var = portable_matmul(np.square(x64 - mean), ones)
    else:
        mean = x64.mean(axis=-1, keepdims=True)
        var = x64.var(axis=-1, keepdims=True)
    return ((x64 - mean) / np.sqrt(var + eps) * scale + bias).astype(np.float32)


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


def load_policy(
    spec: str, action_space: SpaceSpec, *, observation_dim: int | None = None, env: str = "the env"
) -> Policy:
    """Turn a policy description into a policy.

    ``spec`` is ``random``; a scripted controller name (``pendulum_swingup``); a path to a saved
    policy ``.npz``; a run directory (its last checkpoint's policy, exported on the fly: this
    path imports jax); or ``package.module:function`` naming a callable ``fn(obs) -> action``.
    A saved or exported policy is checked against ``observation_dim`` and ``action_space``
    (``env`` names the environment in the error).
    """
    if spec == "random":
        return RandomPolicy(action_space)
    if spec in SCRIPTED_POLICIES:
        return SCRIPTED_POLICIES[spec]()
    if os.path.isdir(spec):
        from hybridrl.training.export import policy_from_run  # jax: only for run directories

        policy = policy_from_run(spec)
        policy.check_spaces(observation_dim, action_space, where=spec, env=env)
        return policy
    if spec.endswith(".npz") or os.path.exists(spec):
        policy = MLPPolicy.load(spec)
        policy.check_spaces(observation_dim, action_space, where=spec, env=env)
        return policy
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
        "a saved policy .npz path, a run directory, or 'module:function'"
    )


def policy_from_agent(
    state: Any,
    action_space: SpaceSpec,
    *,
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
) -> MLPPolicy:
    """A portable `MLPPolicy` from any registered agent's state; see
    `hybridrl.training.export.policy_from_agent` (imported here lazily: this module stays
    importable without jax)."""
    from hybridrl.training.export import policy_from_agent as export

    return export(state, action_space, obs_stats=obs_stats, info=info)
