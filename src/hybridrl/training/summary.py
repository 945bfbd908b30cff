"""Where the runner places the evaluation the dip window needs. The run summary itself is
`hybridrl.evaluation.summary.run_summary` (shared with `hybridrl report`); the metric
definitions are in `hybridrl.evaluation.stats`."""

from __future__ import annotations

import math
from collections.abc import Sequence

from hybridrl.evaluation.stats import dip_window
from hybridrl.training.context import RunSettings
from hybridrl.training.phases import Online, Phase


def dip_evaluation_step(
    phases: Sequence[Phase],
    bounds: Sequence[tuple[int, int]],
    switch_step: int,
    finetune_step: int | None,
    settings: RunSettings,
) -> tuple[int | None, bool]:
    """Where the dip window gets its evaluation: ``(extra, possible)``.

    The runner evaluates an online phase ``(a, b]`` at the first env step past every multiple
    of ``eval_interval`` and at ``b``, but only once updates have changed the policy, i.e. at
    steps ``e`` with ``e - a > update_after``. When none of those lies in the dip window,
    ``extra`` is one more evaluation at the window's end (None when one is there already);
    ``possible`` is False when no evaluation can lie in the window at all.
    """
    n, every = settings.num_envs, settings.eval_interval
    end_step = bounds[-1][1] if bounds else 0
    start, end = dip_window(switch_step, end_step, settings.dip_fraction, finetune_step)
    for p, (a, b) in zip(phases, bounds, strict=True):
        if not (isinstance(p, Online) and p.updates_per_step > 0 and b > a):
            continue
        first = math.ceil((a + 1) / every) * every
        regular = {math.ceil(m / n) * n for m in (b, *range(first, b, every))}
        if any(start < e <= end and e - a > p.update_after for e in regular):
            return None, True
    for p, (a, b) in zip(phases, bounds, strict=True):
        if isinstance(p, Online) and a == finetune_step:
            last = min(int(end // n) * n, b)
            return (last, True) if last - a > p.update_after else (None, False)
    return None, False
