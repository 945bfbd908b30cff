"""Where a run's metrics go: ``metrics.jsonl`` and ``evaluations.csv`` always, TensorBoard and
Weights & Biases when asked (neither is a dependency)."""

from __future__ import annotations

import csv
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
        self._tb: Any = None
        if tensorboard is not False:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                if tensorboard:
                    raise HybridRLError(
                        "--tensorboard needs the tensorboardX package (pip install tensorboardX)"
                    ) from None
            else:  # None: log when tensorboardX is installed
                self._tb = SummaryWriter(str(run_dir / "tensorboard"))
        self._wandb: Any = None
        if wandb_project:
            try:
                import wandb
            except ImportError:
                raise HybridRLError("--wandb needs the wandb package (pip install wandb)") from None
            self._wandb = wandb.init(
                project=wandb_project, name=run_dir.name, config=run_config, resume="allow"
            )

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
