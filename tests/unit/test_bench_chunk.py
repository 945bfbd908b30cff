"""The throughput bench sizes its timed chunks by each agent's arithmetic."""

from __future__ import annotations

from hybridrl.bench import CHUNK_REFERENCE_GFLOP, agent_chunk


def test_cheap_agents_keep_the_chunk_and_costly_ones_get_fewer_updates() -> None:
    assert agent_chunk(200, 0.59) == 200  # SAC
    assert agent_chunk(200, CHUNK_REFERENCE_GFLOP) == 200  # CQL
    assert agent_chunk(200, 95.3) == 16  # full-size RO2O: 200 * 8 / 95.3
    assert agent_chunk(200, 1e6) == 10  # never below the minimum
    # a chunk the user asked to be short is never lengthened
    assert agent_chunk(5, 95.3) == 5
