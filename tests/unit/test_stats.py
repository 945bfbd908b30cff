"""Tests of hybridrl.evaluation.stats: IQM, stratified bootstrap interval, O2O metrics."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrl.evaluation.stats import (
    dip_window,
    finetune_step,
    iqm,
    o2o_metrics,
    stratified_bootstrap_ci,
)

# ------------------------------------------------------------------------------- iqm


def test_iqm_of_one_to_eight_is_mean_of_middle_four():
    # n = 8: cut int(0.25 * 8) = 2 from each end -> mean(3, 4, 5, 6).
    assert iqm(np.arange(1, 9)) == 4.5
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4]) == 4.5  # order does not matter


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # trim_mean(x, 0.25) by hand: sort, drop int(0.25 * n) from each end, average.
        ([5.0], 5.0),  # n=1: nothing cut
        ([1.0, 2.0, 100.0], 103.0 / 3),  # n=3: int(0.75) = 0, plain mean
        ([0.0, 1.0, 2.0, 100.0], 1.5),  # n=4: cut 1 -> mean(1, 2)
        ([100.0, -50.0, 3.0, 4.0, 5.0], 4.0),  # n=5: cut 1 -> mean(3, 4, 5)
        ([10.0, 0.0, 1.0, 2.0, 3.0, -7.0, 1000.0], 3.2),  # n=7: cut 1 -> (0+1+2+3+10)/5
        ([9.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 9.0], 1.0),  # n=10: cut 2
    ],
)
def test_iqm_matches_trim_mean_by_hand(values, expected):
    assert iqm(values) == pytest.approx(expected)


def test_iqm_along_an_axis():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [40.0, 10.0, 30.0, 20.0], [0.0, 0.0, 0.0, 100.0]])
    np.testing.assert_allclose(iqm(x, axis=1), [2.5, 25.0, 0.0])
    np.testing.assert_allclose(iqm(x.T, axis=0), [2.5, 25.0, 0.0])
    np.testing.assert_allclose(iqm(x, axis=-1), [2.5, 25.0, 0.0])
    # n = 3 along axis 0: plain means of the columns
    np.testing.assert_allclose(iqm(x, axis=0), x.mean(axis=0))
    assert iqm(x) == pytest.approx(iqm(x.ravel()))  # axis=None pools everything
    assert isinstance(iqm(x), float)


def test_iqm_of_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        iqm([])


# ------------------------------------------------------------------------------- bootstrap
SCORES = {
    "hopper": [60.0, 72.0, 55.0, 90.0, 66.0],
    "walker": [80.0, 20.0, 75.0, 78.0, 81.0],
    "cheetah": [40.0, 45.0, 41.0, 43.0, 47.0],
}


def test_bootstrap_point_is_the_pooled_statistic_and_interval_contains_it():
    pooled = np.concatenate(list(SCORES.values()))
    point, lo, hi = stratified_bootstrap_ci(SCORES, reps=500)
    assert point == pytest.approx(iqm(pooled))
    assert pooled.min() <= lo < point < hi <= pooled.max()
    p2, lo2, hi2 = stratified_bootstrap_ci(SCORES, statistic=np.mean, reps=500)
    assert p2 == pytest.approx(pooled.mean())
    assert lo2 < p2 < hi2
    # a wider confidence gives a wider interval from the same replicates
    _, lo3, hi3 = stratified_bootstrap_ci(SCORES, statistic=np.mean, reps=500, confidence=0.5)
    assert lo2 < lo3 < hi3 < hi2


def test_bootstrap_is_deterministic_per_seed_and_ignores_key_order():
    a = stratified_bootstrap_ci(SCORES, reps=300, seed=3)
    assert stratified_bootstrap_ci(SCORES, reps=300, seed=3) == a
    reordered = dict(reversed(list(SCORES.items())))
    assert stratified_bootstrap_ci(reordered, reps=300, seed=3) == a
    assert stratified_bootstrap_ci(SCORES, reps=300, seed=4) != a


def test_bootstrap_accepts_runs_by_tasks_matrix():
    matrix = np.array(list(SCORES.values())).T  # (5 runs, 3 tasks), rliable's layout
    # Columns in SCORES order vs sorted-key order differ, so compare the point and the range.
    point, lo, hi = stratified_bootstrap_ci(matrix, reps=300)
    assert point == pytest.approx(iqm(matrix))
    assert lo < point < hi
    # a 1-D array is one task
    p1, lo1, hi1 = stratified_bootstrap_ci(np.array(SCORES["hopper"]), np.mean, reps=300)
    ref = stratified_bootstrap_ci({"hopper": SCORES["hopper"]}, np.mean, reps=300)
    assert (p1, lo1, hi1) == ref


def test_single_run_per_task_collapses_the_interval():
    assert stratified_bootstrap_ci([42.0]) == (42.0, 42.0, 42.0)
    point, lo, hi = stratified_bootstrap_ci({"a": [10.0], "b": [30.0]}, np.mean)
    assert point == lo == hi == 20.0


def test_bootstrap_resamples_within_tasks():
    # Task a always scores 0, task b always 100, 4 runs each. A stratified replicate always
    # holds 4 zeros and 4 hundreds, so its mean (and IQM) is exactly 50: a degenerate
    # interval. Resampling the 8 pooled runs instead would vary the mix.
    scores = {"a": [0.0] * 4, "b": [100.0] * 4}
    assert stratified_bootstrap_ci(scores, np.mean, reps=1000) == (50.0, 50.0, 50.0)
    assert stratified_bootstrap_ci(scores, iqm, reps=1000) == (50.0, 50.0, 50.0)
    # the same 8 values as a single stratum spread out
    _, lo, hi = stratified_bootstrap_ci({"pooled": [0.0] * 4 + [100.0] * 4}, np.mean, reps=1000)
    assert lo < 40.0 and hi > 60.0


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="no tasks"):
        stratified_bootstrap_ci({})
    with pytest.raises(ValueError, match="at least one run"):
        stratified_bootstrap_ci({"a": [1.0], "b": []})
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci([1.0, 2.0], confidence=1.0)


# ------------------------------------------------------------------------------- O2O metrics
# Offline evals at step 1000 (the switch: offline training takes no env steps), then online
# until 5000. Dip window: 1000 < step <= 1000 + 0.25 * 4000 = 2000.
CURVE = [
    (1000, 30.0),  # offline eval 1
    (1000, 50.0),  # offline eval 2: the pre-trained policy
    (1500, 20.0),
    (2000, 10.0),  # on the window's upper bound: inside
    (2500, 5.0),  # outside the window
    (5000, 80.0),
]


def test_o2o_metrics_on_a_hand_built_curve():
    m = o2o_metrics(CURVE, switch_step=1000, end_step=5000, online_episode_scores=[0, 50, 100, 50])
    assert m["pretrain_score"] == 50.0
    assert m["dip_score"] == 10.0
    assert m["dip"] == 40.0
    assert m["final_score"] == 80.0
    assert m["improvement"] == 30.0
    assert m["regret"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.5) / 4)
    # the collapse at 2500 lies after the window: the dip (40) does not show it, the worst does
    assert m["worst_score"] == 5.0 and m["worst_step"] == 2500
    assert set(m) == {
        "pretrain_score",
        "dip_score",
        "dip",
        "worst_score",
        "worst_step",
        "final_score",
        "regret",
        "improvement",
    }


def test_o2o_worst_score_counts_only_after_the_switch_and_keeps_the_first_tie():
    curve = [(1000, 1.0), (1000, 50.0), (3000, 20.0), (4000, 20.0), (5000, 60.0)]
    m = o2o_metrics(curve, switch_step=1000, end_step=5000)
    assert (m["worst_score"], m["worst_step"]) == (20.0, 3000)  # not the offline 1.0
    m = o2o_metrics(curve, switch_step=None, end_step=5000)
    assert m["worst_score"] is None and m["worst_step"] is None


def test_o2o_dip_window_bounds():
    # The window is (switch, switch + f*(T - switch)]: the switch step itself is excluded.
    m = o2o_metrics([(1000, 50.0), (1000, 5.0)], switch_step=1000, end_step=5000)
    assert m["pretrain_score"] == 5.0 and m["dip_score"] is None and m["dip"] is None
    # a narrower window (f = 0.1 -> upper bound 1400) drops 1500 and 2000
    m = o2o_metrics(CURVE, switch_step=1000, end_step=5000, dip_fraction=0.1)
    assert m["dip_score"] is None
    m = o2o_metrics(CURVE, switch_step=1000, end_step=5000, dip_fraction=0.125)  # bound 1500
    assert m["dip_score"] == 20.0 and m["dip"] == 30.0
    # the whole online phase: minimum over all online evals
    assert o2o_metrics(CURVE, 1000, 5000, dip_fraction=1.0)["dip_score"] == 5.0


def test_o2o_dip_window_reaches_past_a_warmup_into_fine_tuning():
    # WSRL-like: switch at 1000, a warm-up that only collects until 2000, fine-tuning to 6000.
    # The window opens at the switch and closes 25% into fine-tuning: 2000 + 0.25 * 4000.
    curve = [(1000, 50.0), (2500, 30.0), (3000, 20.0), (3500, 5.0), (6000, 70.0)]
    m = o2o_metrics(curve, switch_step=1000, end_step=6000, finetune_step=2000)
    assert m["dip_score"] == 20.0 and m["dip"] == 30.0
    # measured from the switch instead, the window (1000, 2250] would hold no evaluation
    assert o2o_metrics(curve, switch_step=1000, end_step=6000)["dip_score"] is None
    assert dip_window(1000, 6000, 0.25, finetune_step=2000) == (1000, 3000.0)
    assert dip_window(1000, 5000, 0.25) == (1000, 2000.0)
    # where fine-tuning starts, from run.json's phase records (empty phases are skipped)
    phases = [
        {"kind": "offline", "start_step": 1000, "end_step": 1000},
        {"kind": "warmup", "start_step": 1000, "end_step": 2000},
        {"kind": "online", "start_step": 2000, "end_step": 2000},
        {"kind": "online", "start_step": 2000, "end_step": 6000},
    ]
    assert finetune_step(phases, switch_step=1000) == 2000
    assert finetune_step(phases, switch_step=None) is None
    assert finetune_step(phases[:3], switch_step=1000) is None


def test_o2o_negative_dip_keeps_its_sign_and_unsorted_input():
    curve = [(3000, 90.0), (0, 40.0), (500, 60.0)]
    m = o2o_metrics(curve, switch_step=0, end_step=3000)
    assert m["pretrain_score"] == 40.0
    assert m["dip_score"] == 60.0
    assert m["dip"] == -20.0  # improved right away
    assert m["final_score"] == 90.0


def test_o2o_none_cases():
    empty = o2o_metrics([], switch_step=1000, end_step=5000)
    assert all(v is None for v in empty.values())
    # offline only: no switch -> only the final score
    m = o2o_metrics([(0, 10.0), (0, 20.0)], switch_step=None, end_step=0, online_episode_scores=[])
    assert m == {
        "pretrain_score": None,
        "dip_score": None,
        "dip": None,
        "worst_score": None,
        "worst_step": None,
        "final_score": 20.0,
        "regret": None,
        "improvement": None,
    }
    # no evaluation at or before the switch (e.g. pure online from scratch)
    m = o2o_metrics([(2000, 10.0)], switch_step=1000, end_step=5000)
    assert m["pretrain_score"] is None and m["dip"] is None and m["improvement"] is None
    assert m["dip_score"] == 10.0
    # raw returns: no regret even with episodes
    m = o2o_metrics(CURVE, 1000, 5000, online_episode_scores=[3000.0], normalized=False)
    assert m["regret"] is None and m["dip"] == 40.0
