"""Shared data for agent tests: a small Pendulum dataset from a decent, noisy controller."""

from __future__ import annotations

import pytest

from hybridrl.data.collect import NoiseConfig, collect
from hybridrl.data.dataset import Dataset
from hybridrl.policies import PendulumSwingUp


@pytest.fixture(scope="session")
def pendulum_offline() -> Dataset:
    """20k transitions (100 episodes) of the swing-up controller with Gaussian noise 0.3.

    Its behaviour level (mean episode return) is -175 (measured); random play gives about -1200.
    """
    return collect(
        "Pendulum-v1",
        PendulumSwingUp(),
        num_steps=20_000,
        seed=0,
        noise=NoiseConfig(gaussian_std=0.3),
        random_reference_episodes=0,
        progress=False,
    )
