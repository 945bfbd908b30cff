"""Multi-layer perceptrons and the library's weight initialization.

Initialization (one convention for every network, so agents are comparable):

* hidden and output kernels: ``variance_scaling(scale, "fan_avg", "uniform")``; with
  ``scale=1`` this is Glorot/Xavier uniform, the default of RLPD (Ball et al., 2023,
  ``rlpd/networks/mlp.py``) and of jaxrl_m, on which WSRL (Zhou et al., 2024) and the JAX Cal-QL
  code build. We pick it over jaxrl/IQL's ``orthogonal(sqrt(2))`` because RLPD and WSRL are the
  hybrid-RL references this library reproduces; with LayerNorm (their critics) the hidden gain
  hardly matters anyway, since each pre-activation is re-normalized.
* the final layer of every head (`hybridrl.networks.heads`) uses ``scale=1e-2`` (jaxrl_m's
  ``final_fc_init_scale``): initial actor means and log-stds are near 0 (actions near the
  centre, std near 1) and initial Q/V values are near 0.
* biases are zero (flax default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax

Initializer = Callable[..., jax.Array]


def default_init(scale: float = 1.0) -> Initializer:
    """``variance_scaling(scale, "fan_avg", "uniform")``: Xavier uniform for ``scale=1``."""
    return nn.initializers.variance_scaling(scale, "fan_avg", "uniform")


class MLP(nn.Module):
    """``x -> [Dense -> Dropout? -> LayerNorm? -> activation] * n`` (the last block is linear
    unless ``activate_final``).

    The order Dense → Dropout → LayerNorm → activation is the one of DroQ (Hiraoka et al., 2022,
    Fig. 1) and RLPD (Ball et al., 2023), so DroQ/RLPD critics are reproduced exactly. Without
    LayerNorm and with ReLU it is identical to dropout *after* the activation (IQL's actor),
    because ``relu(m * x / (1 - p)) == m * relu(x) / (1 - p)`` for a 0/1 mask ``m``.

    Attributes:
        hidden_dims: widths of the Dense layers, the last one included.
        activation: elementwise non-linearity.
        layer_norm: LayerNorm after each activated Dense (before the activation).
        dropout_rate: dropout rate after each activated Dense; ``None`` or 0 disables it.
            Needs ``training=True`` and a ``'dropout'`` rng to be active.
        activate_final: also apply dropout/LayerNorm/activation after the last Dense.
        kernel_init: initializer of every kernel (see the module docstring).
    """

    hidden_dims: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    layer_norm: bool = False
    dropout_rate: float | None = None
    activate_final: bool = False
    kernel_init: Initializer = default_init()

    @nn.compact
    def __call__(self, x: jax.Array, training: bool = False) -> jax.Array:
        """Apply the network; ``training`` enables dropout (static Python bool)."""
        for i, width in enumerate(self.hidden_dims):
            x = nn.Dense(width, kernel_init=self.kernel_init)(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                if self.dropout_rate:
                    x = nn.Dropout(rate=self.dropout_rate)(x, deterministic=not training)
                if self.layer_norm:
                    x = nn.LayerNorm()(x)
                x = self.activation(x)
        return x
