"""Fixtures of the offline-to-online tests: a small Pendulum dataset and the probe agent."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrl.agents import AGENTS
from hybridrl.data.dataset import Dataset
from tests.helpers import pendulum_dataset
from tests.o2o import probe_agent


@pytest.fixture(scope="session")
def pendulum_small() -> Dataset:
    """1000 transitions of the noisy swing-up controller, with reference returns."""
    return pendulum_dataset(1000, "pendulum-small", ref_min_score=-1200.0, ref_max_score=-150.0)


@pytest.fixture(scope="session")
def positive_rewards(pendulum_small: Dataset) -> Dataset:
    """The same transitions with every reward +1 (Pendulum's own rewards are <= 0), so the
    probe agent can tell offline rows from online ones."""
    t = pendulum_small.transitions
    ones = np.ones_like(np.asarray(t.rewards))
    return Dataset.create(t.replace(rewards=ones), pendulum_small.metadata)


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(AGENTS, "probe", probe_agent)
    return probe_agent
