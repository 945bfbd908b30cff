"""Where a run's metrics go: ``metrics.jsonl`` and ``evaluations.csv`` always, TensorBoard and
Weights & Biases when asked (neither is a dependency)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from hybridrl.data.io import atomic_path
from hybridrl.types import HybridRLError


class RunLogger:
    """Metrics to ``metrics.jsonl`` and ``evaluations.csv`` always; TensorBoard (tensorboardX)
    when installed (``tensorboard=None``; True/False force it on/off); Weights & Biases when
    a project is given. Neither is a dependency."""

    EVAL_COLUMNS = ("phase", "env_step", "update", "score", "return_mean", "return_std", "q_probe")

    def __init__(
        self,
        run_dir: Path,
        records: list[dict[str, Any]],
        *,
        tensorboard: bool | None = None,
        wandb_project: str | None = None,
        run_config: dict[str, Any] | None = None,
    ):
        self.run_dir = run_dir
        self.records = records
        check_optional_loggers(tensorboard, wandb_project)
        # The optional loggers start first, so that a failure leaves no open files behind.
        # TensorBoard and W&B are append-only: after a resume they hold the steps a killed
        # run logged after its last checkpoint twice (the JSONL/CSV files do not).
        self._tb: Any = None
        if tensorboard is not False and _has("tensorboardX"):
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(run_dir / "tensorboard"))
        self._wandb: Any = None
        if wandb_project:
            import wandb

            # a stable id per run directory, so that --resume continues the same W&B run
            run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
            self._wandb = wandb.init(
                project=wandb_project,
                name=run_dir.name,
                id=run_id,
                config=run_config,
                resume="allow",
            )
        # A resumed run rewrites the files from the checkpoint's records: lines a killed run
        # wrote after its last checkpoint disappear, so files and state agree.
        with atomic_path(run_dir / "metrics.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        with atomic_path(run_dir / "evaluations.csv") as tmp, tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.EVAL_COLUMNS)
            for r in records:
                if r["kind"] == "eval":
                    writer.writerow([r.get(c) for c in self.EVAL_COLUMNS])
        self._jsonl = (run_dir / "metrics.jsonl").open("a")
        self._csv_file = (run_dir / "evaluations.csv").open("a", newline="")
        self._csv = csv.writer(self._csv_file)

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if record["kind"] == "eval":
            self._csv.writerow([record.get(c) for c in self.EVAL_COLUMNS])
            self._csv_file.flush()
        scalars = {
            f"{record['kind']}/{k}": v
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("env_step",)
        }
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(k, v, record["env_step"])
        if self._wandb is not None:
            self._wandb.log({**scalars, "env_step": record["env_step"]})

    def close(self) -> None:
        self._jsonl.close()
        self._csv_file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_optional_loggers(tensorboard: bool | None, wandb_project: str | None) -> None:
    """Raise `HybridRLError` now if a logger that was asked for is not installed."""
    if tensorboard and not _has("tensorboardX"):
        raise HybridRLError(
            "--tensorboard needs the tensorboardX package (pip install tensorboardX)"
        )
    if wandb_project and not _has("wandb"):
        raise HybridRLError("--wandb needs the wandb package (pip install wandb)")
