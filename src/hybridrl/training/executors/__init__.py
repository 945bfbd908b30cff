"""One executor per phase kind: `offline` (updates on the dataset), `replay_online` (warm-up
and online phases: env collection in segments, replay updates) and `on_policy` (rollouts and
on-policy updates). Each is a function ``(ctx, phase, learner, key, counters, envs)`` that
runs the rest of its phase and returns the learner and key; none imports another."""
