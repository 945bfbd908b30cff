"""Suite builds that do not depend on the CPU (issue #18 §3).

The published v0 builds differed between two x86-64 machines (halfcheetah-medium-v0 and
hopper-medium-replay-v0 came out with other content hashes). The first component to diverge
is the behaviour policy's matmul: numpy's OpenBLAS picks its kernel for the host CPU at run
time, and each kernel rounds the sums differently (`OPENBLAS_CORETYPE` selects another
kernel on this machine and changes a 3,000-step halfcheetah-medium build's hash); MuJoCo, the
noise generator and numpy's tanh/exp gave the same bits under every code path tried. With
``portable=True`` the policies sum in a fixed order (`portable_matmul`), and builds match the
hashes recorded below whatever kernel or SIMD level numpy uses.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from hybridrl.policies import MLPPolicy, portable_matmul
from hybridrl.suite.datasets import POLICY_ROOT, build, parse_name
from hybridrl.types import HybridRLError

# Content hashes (first 16 hex digits) of 1,000-step portable builds, seed 0, with the
# policies in src/hybridrl/suite/policies as of this commit. A new behaviour policy changes
# them: rebuild with `_prefix_hash` and update.
RECORDED = {
    "hopper-random-v0": "29d2ea4d7ba731b6",
    "hopper-medium-v0": "be28414eb1b2df1f",
    "hopper-expert-v0": "849274b40a85a8bd",
    "hopper-medium-expert-v0": "79952f22415318a5",
    "halfcheetah-medium-v0": "ec709e6fb300c8e5",
    "walker2d-expert-v0": "2939ae269575ef9e",
    "pointmaze-umaze-v0": "add5dca0a16bd283",
}
PREFIX = 1000


def _prefix_hash(name: str, portable: bool = True) -> str:
    ds = build(parse_name(name), steps=PREFIX, progress=False, portable=portable)
    return ds.content_hash()[:16]


def _sequential(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The reference order: one multiply and one add per term, k = 0, 1, ..."""
    acc = np.zeros((x.shape[0], w.shape[1]), np.result_type(x, w))
    for k in range(w.shape[0]):
        acc = acc + x[:, k : k + 1] * w[k]
    return acc


@pytest.mark.parametrize(
    "shape", [(1, 17, 256), (5, 256, 256), (3, 256, 1), (70, 40, 6), (0, 4, 3)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_portable_matmul_sums_in_index_order(shape: tuple[int, int, int], dtype: type) -> None:
    n, k, j = shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, k)).astype(dtype)
    w = rng.normal(size=(k, j)).astype(dtype)
    got = portable_matmul(x, w)
    assert got.shape == (n, j) and got.dtype == dtype
    np.testing.assert_array_equal(got, _sequential(x, w))
    np.testing.assert_allclose(got, x @ w, rtol=1e-4, atol=1e-4)
    if n:
        np.testing.assert_array_equal(portable_matmul(x[0], w), got[0])


def test_portable_policy_is_batch_invariant_and_close_to_blas() -> None:
    policy = MLPPolicy.load(POLICY_ROOT / "hopper" / "expert.npz")
    portable = dataclasses.replace(policy, portable=True)
    obs = np.random.default_rng(1).normal(size=(64, policy.observation_dim)).astype(np.float32)
    rng = np.random.default_rng(0)
    batch = portable.act(obs, deterministic=True, rng=rng)
    rows = np.concatenate([portable.act(o[None], deterministic=True, rng=rng) for o in obs])
    np.testing.assert_array_equal(batch, rows)
    np.testing.assert_allclose(batch, policy.act(obs, deterministic=True, rng=rng), atol=1e-5)
    assert portable.describe()["inference"] == "portable"
    assert "inference" not in policy.describe()


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_portable_build_prefix_matches_its_recorded_hash(name: str) -> None:
    assert _prefix_hash(name) == RECORDED[name]


def _child_hash(env: dict[str, str], portable: bool) -> str:
    code = (
        "from tests.unit.test_portable_builds import _prefix_hash; "
        f"print(_prefix_hash('halfcheetah-medium-v0', portable={portable}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.split()[-1]


@pytest.mark.parametrize(
    "env",
    [
        {"OPENBLAS_CORETYPE": "Nehalem"},  # SSE kernels instead of this CPU's AVX2 ones
        {"NPY_DISABLE_CPU_FEATURES": "AVX2,FMA3,F16C"},  # numpy's SIMD loops at SSE level
    ],
    ids=["openblas-nehalem", "numpy-sse"],
)
def test_portable_build_is_the_same_under_other_cpu_code_paths(env: dict[str, str]) -> None:
    """Another CPU, emulated: the same build with BLAS kernels or numpy SIMD loops of an older
    ISA gives the recorded bits."""
    assert _child_hash(env, portable=True) == RECORDED["halfcheetah-medium-v0"]


def test_blas_inference_is_what_differs_between_cpus() -> None:
    """The check above can fail: the same build through BLAS changes with the kernel."""
    assert _child_hash({}, portable=False) != _child_hash(
        {"OPENBLAS_CORETYPE": "Nehalem"}, portable=False
    )


def test_cli_collect_portable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from hybridrl.cli import app
    from hybridrl.data import load_dataset

    runner = CliRunner()
    expert = str(POLICY_ROOT / "hopper" / "expert.npz")
    common = ["collect", "Hopper-v5", "--steps", "50", "--ref-episodes", "0"]
    out = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for target, extra in zip(out, (["--portable"], []), strict=True):
        result = runner.invoke(app, [*common, "--policy", expert, *extra, "--out", str(target)])
        assert result.exit_code == 0, result.output
    portable, blas = (load_dataset(str(p)) for p in out)
    assert portable.metadata.provenance["policy"]["inference"] == "portable"
    assert "inference" not in blas.metadata.provenance["policy"]
    np.testing.assert_allclose(
        portable.transitions.actions[:5], blas.transitions.actions[:5], atol=1e-5
    )
    refused = tmp_path / "r.npz"
    result = runner.invoke(app, [*common, "--portable", "--out", str(refused)])
    # the entry point turns a HybridRLError into one line and exit code 2 (tests/integration)
    assert isinstance(result.exception, HybridRLError)
    assert "--portable applies to saved MLP policies" in str(result.exception)
    assert not refused.exists()
