"""WSRL's switch and online update against the official code (issue #18 §1).

Reference: github.com/zhouzypaul/wsrl at commit 891ee353afe5303835da421c60d4ac35f6e2ef10,
files ``finetune.py`` (the switch: L217-219 restore, L271-295 stage change, L336-370 updates),
``wsrl/agents/sac.py`` (``SACAgent``: critic_loss_fn L219-283, policy_loss_fn L285-338,
temperature_loss_fn L340-351, update L360-417, update_high_utd L624-678, _create_common
L458-543), ``wsrl/agents/cql.py`` (the Cal-QL/CQL pretraining agent), ``wsrl/common/common.py``
(``JaxRLTrainState``), ``wsrl/networks/{actor_critic_nets,lagrange,mlp}.py``,
``experiments/configs/{sac,wsrl,ensemble,cql,train}_config.py`` and
``experiments/scripts/*/launch_wsrl_finetune.sh`` (``--agent sac --utd 4 --batch_size 1024
--warmup_steps 5000``, started with ``--resume_path`` of a Cal-QL/CQL checkpoint).

What the official switch does: WSRL fine-tunes a NEW ``SACAgent`` built from ``wsrl_config``
into which the pretrained checkpoint is restored (``checkpoints.restore_checkpoint(path,
target=agent)``): every pytree field of the train state comes back — params, target params,
``opt_states`` (Adam moments and counts: NOT reset), rng, step — while the config is the SAC
one: 10 critics with a random subset of 2 in the target, ``backup_entropy=False``, target
entropy -|A|, actor and critic LayerNorm, actor on the min of all critics, actor/temperature
learning rate 1e-4, critic 3e-4, γ 0.99, τ 5e-3, no conservative term. hybridrl's `wsrl`
recipe does it with hooks: `SwitchAgent("sac")` (the Cal-QL state is a SAC state) and
`SetConfig({"utd_ratio": 4})`, keeping every array and the pretraining config's SAC fields.

The update after the switch is compared with the official ``update_high_utd`` rule from the
reference in test_equivalence_sac.py (same ensemble forward pass; flags from wsrl's configs).

Differences found, with evidence (official file:line at the commit above):

Named in issue #18 §2, fixed (the tests below failed before the fix):
  a. Actor LayerNorm: official actor has it in both phases (``wsrl_config.py`` L12
     ``policy_network_kwargs.use_layer_norm = True``; pretraining with ``--use_redq`` gets it
     from ``ensemble_config.py`` L8). hybridrl: `sac.Config.actor_layer_norm`, on in the
     ``wsrl`` and ``wsrl_cql`` presets.
  b. Max-over-samples backup: Cal-QL's config (``max_target_backup=True``) survived the switch
     and `sac.critic_target` ignored it. Official: ``SACAgent`` honours ``max_target_backup``
     (sac.py L179-196, L206-216); it is True in ``antmaze_wsrl`` (train_config.py L73) and
     False (the default, sac.py L480) elsewhere. hybridrl: SAC honours the flag and the
     presets' switch sets it to the official fine-tuning value; `SwitchAgent` refuses any
     field the new agent would ignore (unless the old config declares it as its own term in
     ``SWITCH_REMOVES``, as CQL does for its penalty's fields).
  c. Conservative penalty: official CQL/Cal-QL applies it to a random subset of
     ``critic_subsample_size`` = 2 critics (cql.py L113-125: ``q_pred`` and ``cql_q_samples``
     both indexed by the subset). hybridrl: `cql.Config.cql_subsample_critics` (default on)
     penalises a fresh subset of ``num_min_qs`` critics per step (drawn without replacement;
     the official ``randint`` draws with).

Other differences (reported; the reference follows hybridrl where noted):
  1. Critic loss summed over critics (hybridrl) vs mean over critics and batch (official
     L275): a factor N, as for RLPD. Reference follows hybridrl (``critic_scale = N``).
  2. Actor/temperature minibatch: official ``update_high_utd`` steps them on the WHOLE batch
     (L669-673, ``batch`` not ``minibatches[-1]``); hybridrl on the last minibatch
     (documented in docs/o2o.md). Reference follows hybridrl.
  3. Official ``update(networks_to_update=...)`` replaces the losses of the networks not
     updated by a constant 0 (sac.py L395-396) but still applies every optimizer
     (common.py L140-162): the critic's Adam takes a momentum-only step during the actor
     step and the actor's and temperature's Adam one during each of the U critic steps.
     hybridrl takes no such steps (they are an artefact, not part of WSRL's method).
     Reference follows hybridrl.
  4. Temperature: official α = softplus(θ) (``GeqLagrangeMultiplier``, lagrange.py L77-79) and
     loss ``α (H(s') - H̄)`` with H from fresh samples at the NEXT states (sac.py L340-351);
     hybridrl α = exp(log α) and ``-α (log π(ã|s) + H̄)`` with the actor step's samples at s.
     Same fixed point; reference follows hybridrl.
  5. Target subset: official draws it with ``jax.random.randint`` (WITH replacement, sac.py
     L238-243: both indices equal with probability 1/N); hybridrl (and RLPD) draw 2 distinct
     critics. The reference is fed hybridrl's indices.
  6. Actor std: official ``exp`` of a Dense output clipped to std ∈ [1e-5, 10] (AntMaze: a
     state-independent ``uniform`` log-std), hybridrl log σ clipped to [-20, 2]. Architecture,
     not update rule; the reference uses hybridrl's clip.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from hybridrl.agents import cql, sac
from hybridrl.training.phases import Learner, Online, Warmup
from hybridrl.training.recipes import get_recipe
from tests.agents.test_equivalence_sac import (
    ACT_DIM,
    HIDDEN,
    OBS_DIM,
    Rule,
    _initial_state,
    batch_of,
    check_update_against_official,
    perturbed,
)

N_QS, N_MIN = 4, 2
UTD = 4  # launch_wsrl_finetune.sh: --utd 4
B = 16


def _nonzero_optimizer_states(state: Any, seed: int) -> Any:
    """Adam moments and counts set to arbitrary non-zero values, as after pretraining: a reset
    (fresh zeros) is then visible."""
    rng = np.random.default_rng(seed)

    def fill(x: Any) -> Any:
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.integer):
            return jnp.asarray(np.full(x.shape, 7, x.dtype))
        return jnp.asarray(np.abs(rng.standard_normal(x.shape)).astype(x.dtype))

    changes = {
        name: getattr(state, name).replace(
            opt_state=jax.tree_util.tree_map(fill, getattr(state, name).opt_state)
        )
        for name in ("actor", "critic", "temperature", "alpha_prime")
    }
    return dataclasses.replace(state, **changes)


def pretrained_calql_state(seed: int = 0) -> cql.State:
    """The `wsrl` recipe's Cal-QL state (hidden (8, 8), 4 critics, subsets of 2) as after
    pretraining: perturbed weights, non-zero optimizer states."""
    return _nonzero_optimizer_states(perturbed(_initial_state("calql", N_QS), seed), seed)


def switch(state: cql.State) -> Learner:
    """Apply the hooks of every phase after pretraining in the `wsrl` recipe, in order."""
    learner = Learner(agent_name="calql", state=state, offline=None, online=None)
    for phase in get_recipe("wsrl").phases[1:]:
        for hook in phase.hooks:
            learner = hook.apply(learner)
    return learner


def _leaves_equal(a: Any, b: Any) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb, strict=True))


# --------------------------------------------------------------------------- the switch
def test_wsrl_phases_match_the_official_scripts():
    """Pretraining, a 5000-step warm-up without updates, then SAC with UTD 4 and no offline
    data (launch_wsrl_finetune.sh: --warmup_steps 5000 --utd 4; finetune.py L338-342 takes no
    update during the warm-up, ``offline_data_ratio`` 0 retains no offline data)."""
    phases = get_recipe("wsrl").phases
    assert [type(p) for p in phases[1:]] == [Warmup, Online]
    warmup, online = phases[1], phases[2]
    assert isinstance(warmup, Warmup) and warmup.steps == 5000
    assert isinstance(online, Online) and online.offline_ratio == 0.0


def test_switch_keeps_every_array_as_the_official_restore_does():
    """Official: ``restore_checkpoint(target=agent)`` restores params, target params and the
    optimizer states into the fine-tuning agent (finetune.py L217-219; JaxRLTrainState's
    pytree fields, common.py L106-112): nothing is reset. hybridrl's hooks keep every array
    (optimizer moments and counts included) and switch the update rule to SAC with UTD 4."""
    state = pretrained_calql_state()
    learner = switch(state)
    assert learner.agent_name == "sac"
    assert learner.offline is None  # DropOfflineData: WSRL retains no offline data
    new = learner.state
    for name in ("actor", "critic", "temperature"):
        before, after = getattr(state, name), getattr(new, name)
        assert _leaves_equal(before.params, after.params), name
        assert _leaves_equal(before.opt_state, after.opt_state), f"{name} optimizer was reset"
    assert _leaves_equal(state.critic.target_params, new.critic.target_params)
    assert new.config.utd_ratio == 4
    assert new.config.max_target_backup is False  # wsrl's SAC default (sac.py L480)
    # everything else in the config is the pretraining one (checked against wsrl's SAC
    # config in the next test)
    assert (
        dataclasses.replace(
            new.config,
            utd_ratio=state.config.utd_ratio,
            max_target_backup=state.config.max_target_backup,
        )
        == state.config
    )


def test_config_after_switch_is_wsrls_sac_config():
    """The SAC fields in effect after the switch equal the official fine-tuning agent's
    (experiments/configs/sac_config.py and wsrl_config.py; sac.py ``_create_common`` turns
    ``target_entropy = 0.0`` into -|A|, L526-527; the actor aggregates with ``min`` over all
    critics, sac.py L302)."""
    recipe = get_recipe("wsrl")
    config = dataclasses.replace(recipe.agent_config(), utd_ratio=4)
    assert (config.num_qs, config.num_min_qs, config.critic_layer_norm) == (10, 2, True)
    assert config.backup_entropy is False
    assert config.actor_q == "min"
    assert (config.actor_lr, config.critic_lr, config.temperature_lr) == (1e-4, 3e-4, 1e-4)
    assert (config.discount, config.tau) == (0.99, 0.005)
    assert config.target_entropy is None and config.target_entropy_scale == 1.0  # H̄ = -|A|
    assert config.critic_dropout is None
    state = pretrained_calql_state()
    assert float(state.target_entropy) == -ACT_DIM


# ---------------------------------------------------------------- the update after it
# Official WSRL SACAgent values (sac_config.py, wsrl_config.py), with the reference following
# hybridrl on differences 1-4 of the module docstring.
WSRL_RULE = Rule(
    actor_q="min",  # policy_loss_fn: predicted_qs.min(axis=0), all critics
    backup_entropy=False,  # sac_config.py: backup_entropy = False
    target_entropy=-float(ACT_DIM),
    critic_scale=float(N_QS),  # difference 1
    discount=0.99,
    tau=0.005,  # soft_target_update_rate 5e-3
    actor_lr=1e-4,
    critic_lr=3e-4,
    temperature_lr=1e-4,
)


def test_online_update_after_switch_matches_official_high_utd():
    """The first fine-tuning update (hybridrl `sac.update` on the switched Cal-QL state, UTD
    4) against the official ``update_high_utd``: 4 critic steps of the plain SAC loss (no
    conservative term, no entropy backup, subset-2 min target, Polyak each), then the actor
    (min over all critics, updated critics) and the temperature: gradients of every step,
    losses and all post-update parameters to 1e-5."""
    learner = switch(pretrained_calql_state(seed=1))
    assert learner.agent_name == "sac"
    batch = batch_of(11, UTD * B)
    check_update_against_official(
        learner.state, batch, jax.random.PRNGKey(12), WSRL_RULE, N_QS, N_MIN
    )


# ------------------------------------------- deviations named in issue #18 §2 (fixed)
def test_actor_has_layer_norm_as_in_official_wsrl():
    """Official: wsrl_config.py L12 (and ensemble_config.py L8 for the pretraining). Before
    issue #18 §2 hybridrl's actor had none (`sac.Config.actor_layer_norm`, on in the `wsrl`
    presets)."""
    for name in ("wsrl", "wsrl_cql"):
        assert get_recipe(name).agent_config().actor_layer_norm, name
    state = switch(pretrained_calql_state()).state
    paths = [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state.actor.params)
    ]
    assert any("LayerNorm" in p for p in paths)


def test_max_target_backup_is_not_dropped_silently_at_the_switch():
    """After the switch the config's ``max_target_backup`` is the official fine-tuning one
    (False: wsrl's SACAgent default, sac.py L480, for locomotion/adroit/kitchen) and SAC's
    update honours whatever it says (sac.py L179-216): with the flag the target is the
    max-over-samples backup, without it the single-sample one."""
    state = switch(pretrained_calql_state()).state
    batch = batch_of(13, B)
    key = jax.random.PRNGKey(14)
    single = jax.jit(sac.critic_target)(state, batch, key)
    max_backup = jax.jit(cql.critic_target)(state, batch, key)
    assert (not state.config.max_target_backup) or np.allclose(single, max_backup)
    assert state.config.max_target_backup is False

    on = dataclasses.replace(
        state, config=dataclasses.replace(state.config, max_target_backup=True)
    )
    got = np.asarray(jax.jit(sac.critic_target)(on, batch, key))
    # the max backup by hand: num_samples next actions, min over the subset, max over samples
    k_pi, k_sub, _ = jax.random.split(key, 3)
    dist = on.actor.apply_fn({"params": on.actor.params}, batch.next_observations)
    acts = jnp.swapaxes(dist.sample(k_pi, (on.config.num_samples,)), 0, 1)  # (B, M, A)
    obs = jnp.broadcast_to(batch.next_observations[:, None], (*acts.shape[:2], OBS_DIM))
    qs = on.critic.apply_fn({"params": on.critic.target_params}, obs, acts)  # (N, B, M)
    members = jax.random.choice(k_sub, N_QS, shape=(N_MIN,), replace=False)
    next_q = np.asarray(qs[members].min(axis=0).max(axis=-1))
    want = np.asarray(batch.rewards) + 0.99 * (1 - np.asarray(batch.terminals)) * next_q
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, single)


def test_switch_refuses_a_field_the_new_agent_would_ignore():
    """No config field is ignored silently after `SwitchAgent`: a field the new agent does
    not implement and the old config does not declare as its own removed term is refused,
    naming the field."""
    from hybridrl.training.phases import SwitchAgent
    from hybridrl.types import HybridRLError

    @struct.dataclass
    class Extended(cql.Config):
        lookahead_horizon: int = struct.field(pytree_node=False, default=3)

    state = pretrained_calql_state()
    fields = {f.name: getattr(state.config, f.name) for f in dataclasses.fields(state.config)}
    odd = dataclasses.replace(state, config=Extended(**fields))
    learner = Learner(agent_name="calql", state=odd, offline=None, online=None)
    with pytest.raises(HybridRLError, match="lookahead_horizon"):
        SwitchAgent("sac").apply(learner)
    # the declared penalty fields go with the penalty; max_target_backup is carried
    plain = Learner(agent_name="calql", state=state, offline=None, online=None)
    assert SwitchAgent("sac").apply(plain).agent_name == "sac"


def test_max_target_backup_with_entropy_backup_is_refused():
    """The official codes put the entropy term of a max backup in different places (JaxCQL
    after the max, wsrl's SACAgent before it); hybridrl refuses the pair rather than ignore
    ``backup_entropy``."""
    from hybridrl.types import HybridRLError

    state = switch(pretrained_calql_state()).state
    both = dataclasses.replace(
        state,
        config=dataclasses.replace(state.config, max_target_backup=True, backup_entropy=True),
    )
    with pytest.raises(HybridRLError, match="backup_entropy"):
        sac.critic_target(both, batch_of(13, B), jax.random.PRNGKey(0))


def test_conservative_penalty_reaches_only_the_target_subset():
    """Official cql.py L113-125: the penalty uses ``critic_subsample_size`` (2) random critics
    per step, so at most 2 members get its gradient (`cql.Config.cql_subsample_critics`,
    default on); before issue #18 §2 hybridrl penalised all N. Off, all N are reached."""
    state = pretrained_calql_state()
    batch = batch_of(15, B, mc_returns=True)

    def touched(st: Any) -> int:
        @jax.jit
        def grads(params: Any) -> Any:
            def penalty(p: Any) -> jax.Array:
                return cql.conservative_penalty(st, p, batch, jax.random.PRNGKey(16))[0]

            return jax.grad(penalty)(params)

        out_w = grads(st.critic.params)["ensemble"]["members"]["Dense_0"]["kernel"]
        return int(np.sum(np.any(np.abs(np.asarray(out_w)) > 0, axis=(1, 2))))

    assert touched(state) == N_MIN, f"{touched(state)} of {N_QS} critics get the gradient"
    all_n = dataclasses.replace(
        state, config=dataclasses.replace(state.config, cql_subsample_critics=False)
    )
    assert touched(all_n) == N_QS


def test_hidden_sizes_are_the_tiny_ones():
    """Guard: the shared helpers shrink the presets (seconds, not minutes)."""
    state = pretrained_calql_state()
    assert tuple(state.config.hidden_dims) == HIDDEN
    assert state.critic.params["ensemble"]["members"]["MLP_0"]["Dense_0"]["kernel"].shape == (
        N_QS,
        OBS_DIM + ACT_DIM,
        HIDDEN[0],
    )
