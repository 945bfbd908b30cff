"""Plain-numpy (float64) building blocks for the equivalence tests against official code.

The equivalence tests (`test_equivalence_iql.py`, `test_equivalence_td3_bc.py`) rewrite each
official update rule in numpy with hand-written backpropagation, so that nothing of hybridrl's
networks, losses or optimizers enters the reference. A network here is a flat list of float64
arrays ``[W_0, b_0, ..., W_L, b_L]`` (kernels laid out (in, out), ``y = x @ W + b``) with ReLU
between layers and a linear last layer, the MLP of both official repositories.

The only hybridrl-specific code here is plumbing: reading a flax parameter tree into that flat
list (`dense_stack`), drawing non-trivial parameters into a tree (`randomized`), and
`recording`, an optimizer wrapper that keeps the gradient an agent hands to its optimizer, so the
tests can compare hybridrl's *gradients*, not only its post-update parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = list[np.ndarray]


# ----------------------------------------------------------------------------- MLP
class Cache(NamedTuple):
    """Inputs and pre-activations of each layer, for the backward pass."""

    inputs: list[np.ndarray]
    pre: list[np.ndarray]


def mlp_forward(theta: Params, x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """``x -> relu(x W_0 + b_0) -> ... -> h W_L + b_L`` (linear output layer)."""
    n_layers = len(theta) // 2
    inputs, pre = [], []
    h = x
    for i in range(n_layers):
        inputs.append(h)
        z = h @ theta[2 * i] + theta[2 * i + 1]
        pre.append(z)
        h = np.maximum(z, 0.0) if i + 1 < n_layers else z
    return h, Cache(inputs, pre)


def mlp_backward(theta: Params, cache: Cache, g_out: np.ndarray) -> tuple[Params, np.ndarray]:
    """Gradients w.r.t. every array of ``theta`` and w.r.t. the input, given dL/d(output)."""
    n_layers = len(theta) // 2
    grads: Params = [np.zeros_like(p) for p in theta]
    g = g_out
    for i in reversed(range(n_layers)):
        if i + 1 < n_layers:
            # ReLU derivative: 1 where the pre-activation was positive (0 at 0, as jax's relu)
            g = g * (cache.pre[i] > 0)
        grads[2 * i] = cache.inputs[i].T @ g
        grads[2 * i + 1] = g.sum(axis=0)
        g = g @ theta[2 * i].T
    return grads, g


# ----------------------------------------------------------------------------- optimizer
class Adam:
    """Adam (Kingma & Ba, 2015) with the defaults shared by optax and ``torch.optim.Adam``:
    β1 0.9, β2 0.999, ε 1e-8 added to the bias-corrected ``sqrt(v̂)``, no weight decay."""

    def __init__(self, shapes: Sequence[np.ndarray]) -> None:
        self.m = [np.zeros_like(p) for p in shapes]
        self.v = [np.zeros_like(p) for p in shapes]
        self.t = 0

    def step(self, theta: Params, grads: Params, lr: float) -> Params:
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        new = []
        for i, (p, g) in enumerate(zip(theta, grads, strict=True)):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            m_hat = self.m[i] / (1 - b1**self.t)
            v_hat = self.v[i] / (1 - b2**self.t)
            new.append(p - lr * m_hat / (np.sqrt(v_hat) + eps))
        return new


def polyak(target: Params, online: Params, tau: float) -> Params:
    """``θ' ← τ θ + (1 - τ) θ'``."""
    return [tau * p + (1 - tau) * tp for p, tp in zip(online, target, strict=True)]


# ----------------------------------------------------------------------------- plumbing
def dense_stack(tree: Any, body: str, head: str, member: int | None = None) -> Params:
    """The flat float64 list of a flax MLP ``tree[body]['Dense_i']`` followed by the output
    layer ``tree[head]`` (``member`` picks one network of a vmapped ensemble)."""

    def leaf(x: Any) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        return a if member is None else a[member]

    layers = [tree[body][f"Dense_{i}"] for i in range(len(tree[body]))] + [tree[head]]
    return [leaf(layer[name]) for layer in layers for name in ("kernel", "bias")]


def randomized(tree: Any, seed: int, out_scale: float = 1.0, out_bias: float = 0.0) -> Any:
    """A tree of the same structure with O(1) outputs: kernels N(0, 1/fan_in), biases
    N(0, 0.1²), ``log_std`` U(-1, 0.5); ``out_scale`` multiplies the output layers' kernels
    and ``out_bias`` shifts their biases.

    hybridrl's init gives near-zero outputs (1e-2-scaled final layers), which would make Q, V
    and the advantages nearly constant and the comparison weak; the official inits differ
    anyway (orthogonal, PyTorch default), so both sides simply start from these values.
    """
    rng = np.random.default_rng(seed)

    def draw(path: tuple[Any, ...], x: jax.Array) -> jax.Array:
        names = [str(getattr(k, "key", k)) for k in path]
        if names[-1] == "log_std":
            value = rng.uniform(-1.0, 0.5, x.shape)
        elif names[-1] == "kernel":
            scale = out_scale if "MLP_0" not in names else 1.0
            value = rng.normal(0.0, scale / np.sqrt(x.shape[-2]), x.shape)
        else:
            shift = out_bias if "MLP_0" not in names else 0.0
            value = rng.normal(shift, 0.1, x.shape)
        return jnp.asarray(value, jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, tree)


@cache
def recording(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` unchanged, plus the last gradient it received, kept in ``opt_state[0]``.

    Cached (one wrapper per optimizer, as `hybridrl.core.optim` caches the optimizers): the
    optimizer is part of the state's static structure, so equal wrappers let the tests'
    parametrizations reuse one compiled update.
    """

    def init(params: Any) -> Any:
        return (jax.tree_util.tree_map(jnp.zeros_like, params), tx.init(params))

    def update(grads: Any, state: Any, params: Any = None) -> Any:
        updates, inner = tx.update(grads, state[1], params)
        return updates, (grads, inner)

    return optax.GradientTransformation(init, update)


def recorded(train_state: Any, params: Any) -> Any:
    """``train_state`` with new ``params`` and a fresh `recording` optimizer around its own."""
    tx = recording(train_state.tx)
    return train_state.replace(params=params, tx=tx, opt_state=tx.init(params))


def assert_close(
    actual: Sequence[Any], expected: Sequence[np.ndarray], what: str, atol: float = 1e-5
) -> None:
    """Every array of two flat lists equal to rtol = 1e-5 and ``atol``.

    Post-update parameters are compared with ``atol=1e-6``: one Adam step moves a parameter
    by about the learning rate (3e-4), so 1e-5 would resolve the step only to 3 %; float32
    rounding of the parameters themselves stays below 3e-7 here.
    """
    assert len(actual) == len(expected), what
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        np.testing.assert_allclose(
            np.asarray(a, np.float64), e, rtol=1e-5, atol=atol, err_msg=f"{what}[{i}]"
        )
