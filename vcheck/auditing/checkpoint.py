"""The checkpoint of a sweep: `out_dir/checkpoint.jsonl`, a header line naming the plan (target, seed,
cases), then one line per finished case, appended and flushed as it finishes, so that an interrupted
sweep can resume (`run_sweep(..., resume=True)`) with only the cases it does not hold."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vcheck.auditing.cases import Case
from vcheck.auditing.plan import SweepError, SweepPlan, SweepResult
from vcheck.auditing.results import CaseResult

#: the checkpoint's file name inside the audit's output directory
CHECKPOINT = "checkpoint.jsonl"
#: version of the checkpoint format
CHECKPOINT_FORMAT = 1


class Checkpoint:
    """`checkpoint.jsonl`: a header line (the plan), then one line per finished case, appended and
    flushed as each finishes: {"position": i, "result": CaseResult.to_dict()}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, plan: SweepPlan, total: int, keep: bool) -> None:
        """A new checkpoint for `plan` (or, with `keep`, go on appending to the one that is there)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep:
            return
        header = {"vcheck_checkpoint": CHECKPOINT_FORMAT, **plan.header(), "total": total}
        self.path.write_text(json.dumps(header) + "\n", encoding="utf-8")

    def append(self, position: int, payload: dict[str, Any]) -> None:
        line = json.dumps({"position": position, "result": payload})
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self, plan: SweepPlan, cases: Sequence[Case]) -> dict[int, CaseResult]:
        """The finished cases of the same plan; SweepError for a checkpoint of another sweep.

        A line that cannot be read (the last one, cut by a crash) is skipped: that case runs again.
        """
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("vcheck_checkpoint") != CHECKPOINT_FORMAT:
            raise SweepError(f"cannot resume: {self.path} is not a vcheck sweep checkpoint")
        mine = plan.header()
        theirs = {k: header.get(k) for k in mine}
        if theirs != mine:
            diffs = ", ".join(
                f"{k} {theirs[k]!r} there, {mine[k]!r} here" for k in mine if theirs[k] != mine[k]
            )
            raise SweepError(
                f"cannot resume: {self.path} belongs to another sweep ({diffs}); rerun with the same "
                "target, --seed, --cases and --large, or without --resume to start afresh"
            )
        done: dict[int, CaseResult] = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                position = int(entry["position"])
                one = CaseResult.from_dict(entry["result"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
            if not 0 <= position < len(cases):
                raise SweepError(
                    f"cannot resume: {self.path} holds case {position}, this sweep has {len(cases)}"
                )
            if one.case.to_dict(with_data=False) != cases[position].to_dict(with_data=False):
                raise SweepError(
                    f"cannot resume: case {position} in {self.path} is {one.case.label} "
                    f"{one.case.formula!r}, this sweep's is {cases[position].label} "
                    f"{cases[position].formula!r} (vcheck's cases changed); rerun without --resume"
                )
            one.case = cases[position]
            for f in one.findings:
                f.case = one.case
            done[position] = one
        return done


def discard_checkpoint(result: SweepResult) -> None:
    """Remove a complete sweep's checkpoint (once its report is written): nothing is left to resume."""
    if result.checkpoint is not None and not result.interrupted and result.not_run == 0:
        with contextlib.suppress(FileNotFoundError):
            result.checkpoint.unlink()
