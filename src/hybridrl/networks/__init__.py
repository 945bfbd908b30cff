"""Flax (linen) networks: MLPs, vmapped ensembles, value and policy heads."""

from hybridrl.networks.ensemble import (
    Ensemble,
    ensemble_mean,
    ensemble_min,
    subsample_ensemble_min,
)
from hybridrl.networks.heads import (
    DeterministicActor,
    EnsembleCritic,
    GaussianActor,
    PPOCategoricalActor,
    PPOGaussianActor,
    PPOStateValue,
    StateActionValue,
    StateValue,
    TanhGaussianActor,
    TanhStateActionValue,
    Temperature,
)
from hybridrl.networks.mlp import MLP, default_init

__all__ = [
    "MLP",
    "DeterministicActor",
    "Ensemble",
    "EnsembleCritic",
    "GaussianActor",
    "PPOCategoricalActor",
    "PPOGaussianActor",
    "PPOStateValue",
    "StateActionValue",
    "StateValue",
    "TanhGaussianActor",
    "TanhStateActionValue",
    "Temperature",
    "default_init",
    "ensemble_mean",
    "ensemble_min",
    "subsample_ensemble_min",
]
