"""Flax (linen) networks: MLPs, vmapped ensembles, value and policy heads."""

from hybridrl.networks.conditioned import ConditionedActor, conditioned_inputs, sinusoidal_code
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
    "ConditionedActor",
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
    "conditioned_inputs",
    "default_init",
    "ensemble_mean",
    "ensemble_min",
    "sinusoidal_code",
    "subsample_ensemble_min",
]
