"""Agent updates per second beside d3rlpy: the same as ``hybridrl bench throughput``.

Run: ``.venv/bin/python benchmarks/throughput.py [--agents sac,iql] [--json-out out.json]``
(``scripts/setup-compare`` first, to install d3rlpy in ``.venv-compare`` for the ratios).
"""

import typer

from hybridrl.cli import bench_throughput

if __name__ == "__main__":
    typer.run(bench_throughput)
