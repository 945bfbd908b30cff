"""hybridrl's Cal-QL update against the official Cal-QL train step (issue #18 §1).

Official code: nakamotoo/Cal-QL @ ac6eafec22e8d60836573e1f488c7f626ce8a77e,
``JaxCQL/conservative_sac.py`` (``ConservativeSAC.get_default_config`` and ``_train_step``
with its ``use_cql``, ``cql_min_q_weight``, ``enable_calql`` arguments), with
``JaxCQL/model.py``, ``JaxCQL/jax_utils.py``, ``JaxCQL/conservative_sac_main.py`` (flags,
target entropy -|A|) and ``scripts/run_antmaze.sh`` (Lagrange with τ = 0.8). The step is
re-derived from its equations in `tests.agents.official_cql` (float64), never by calling
hybridrl's losses; it is JaxCQL's step (see `test_equivalence_cql`) plus the calibration:
the Q values of the π(·|s) and π(·|s') samples are replaced by max(Q, G(s)), G the
Monte-Carlo return, before log π is subtracted, while the uniform samples keep their Q.

One update on a hand-made batch of 16 transitions with Monte-Carlo returns chosen so the
bound is active for part of the samples (about half, checked), hidden (8, 8), M = 3, the same
random draws on both sides (`official_cql.hybridrl_draws`). Compared to rtol = atol = 1e-5:
everything `official_cql.check_update` lists (TD loss and max-backup target, gap, weighted
loss, critic gradients, α' value/loss/gradient, targets after Polyak, actor and temperature
losses and gradients) and the fraction of bounded values (the mean of the official four
``bound_rate_*`` metrics). ``enable_calql=False`` (hybridrl's traced switch, the official
``enable_calql`` argument) is compared with the official step without the bound.

Differences from the official step: CQL's (order of the actor step, temperature loss in α,
policy log-std offset −1 not modelled; see `test_equivalence_cql`). Cal-QL's own terms
showed none.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import pytest

from hybridrl.agents import calql, cql
from tests.agents import official_cql as oc

HIDDEN, M = (8, 8), 3

update = jax.jit(calql.update)


@pytest.fixture(scope="module")
def fresh_state() -> cql.State:
    return oc.fresh_state(HIDDEN)


def test_update_matches_official_step(fresh_state: cql.State) -> None:
    """Cal-QL's defaults (max backup over M next actions, bound on, α = 5), then the same
    compiled update with the bound switched off, against the official step with
    ``enable_calql`` True and False."""
    config = calql.Config(hidden_dims=HIDDEN, num_samples=M)
    state = oc.prepare_state(fresh_state, config)
    batch, key = oc.make_batch(), jax.random.PRNGKey(11)
    settings = oc.official_settings(config, oc.ACT_DIM)
    assert settings.enable_calql and settings.max_target_backup
    on = oc.check_update(update, state, batch, key, settings)
    assert 0.2 < float(on["aux"]["bound_rate"]) < 0.8  # the bound binds for part of the samples

    off_state = dataclasses.replace(state, config=dataclasses.replace(config, enable_calql=False))
    off_settings = dataclasses.replace(settings, enable_calql=False)
    compiled = update._cache_size()  # type: ignore[attr-defined]
    off = oc.check_update(update, off_state, batch, key, off_settings)
    assert update._cache_size() == compiled  # type: ignore[attr-defined]  # traced switch
    # max(Q, G) >= Q: the calibrated gap is larger wherever the bound binds.
    for i in (1, 2):
        assert float(on["aux"][f"gap{i}"]) > float(off["aux"][f"gap{i}"])


def test_lagrange_update_matches_official_step(fresh_state: cql.State) -> None:
    """The AntMaze script's settings: ``cql_lagrange=True``, τ = 0.8, α = 5."""
    config = calql.Config(
        hidden_dims=HIDDEN, num_samples=M, lagrange=True, target_action_gap=0.8, cql_alpha=5.0
    )
    state = oc.prepare_state(fresh_state, config)
    settings = oc.official_settings(config, oc.ACT_DIM)
    assert settings.cql_lagrange
    oc.check_update(update, state, oc.make_batch(), jax.random.PRNGKey(12), settings)


def test_defaults_are_the_official_ones() -> None:
    """``calql.Config()`` against Cal-QL's ``get_default_config`` and its main script's
    flags (``cql_min_q_weight=5.0``, ``enable_calql=True``)."""
    config = calql.Config()
    official = {
        "discount": 0.99,
        "backup_entropy": False,
        "actor_lr": 1e-4,  # policy_lr
        "temperature_lr": 1e-4,  # log α uses policy_lr
        "critic_lr": 3e-4,  # qf_lr
        "lagrange_lr": 3e-4,  # log α' uses qf_lr
        "tau": 5e-3,  # soft_target_update_rate
        "num_samples": 10,  # cql_n_actions
        "lagrange": False,
        "target_action_gap": 1.0,
        "cql_temperature": 1.0,
        "max_target_backup": True,
        "cql_clip_diff_min": -math.inf,
        "cql_clip_diff_max": math.inf,
        "cql_alpha": 5.0,  # --cql_min_q_weight
        "enable_calql": True,  # --enable_calql
        "init_temperature": 1.0,  # log α = Scalar(0.0)
        "init_alpha_prime": math.e,  # log α' = Scalar(1.0)
        "num_qs": 2,
        "actor_q": "min",
        "utd_ratio": 1,  # offline: one step per batch; online_utd_ratio = 1
        "actor_log_std_offset": -1.0,  # conservative_sac_main.py L38
    }
    for field, value in official.items():
        assert getattr(config, field) == value, field
    assert config.target_entropy is None and config.target_entropy_scale == 1.0
