"""A search run directory as the report sees it: every file read defensively and checked for
shape, so the pages and figures can trust what they get. What is missing or damaged is
listed in `RunData.missing` (one phrase each) instead of raising."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

import yaml

from nas.analysis.runs import RunInfo, read_run
from nas.core.files import read_text, read_yaml
from nas.core.rundir import CONFIG, DECISIONS, STAGES, VALUATION, read_json_or_none, read_state
from nas.space.primitives import NUM_EDGES, OP_SETS, primitives

# what Trainer.train_stage logs after every epoch (runs older than stages.jsonl)
LOG_EPOCH = re.compile(r"\[rank (\d+)\] (.+?) epoch (\d+)/(\d+) lr (\S+) train loss (\S+) top1 (\S+)\s*$")
MODEL_FILE = re.compile(r"model(\d+)\.json")


@dataclass
class RunData:
    path: Path
    info: RunInfo  # status (finished | unfinished | broken), summary, genotype
    config: dict = field(default_factory=dict)
    state: dict | None = None
    primitives: tuple[str, ...] = ()
    models: list[dict] = field(default_factory=list)  # valuation/model<m>.json, by model index
    average: list[list[float]] | None = None  # valuation/average.json's matrix
    decisions: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)  # tag, epoch, epochs, lr, loss, top1, rank
    stages_source: str = ""  # where `stages` came from
    missing: list[str] = field(default_factory=list)

    @property
    def method(self) -> str | None:
        return self.info.method


def is_num(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def read_run_data(run_dir) -> RunData:
    run_dir = Path(run_dir)
    data = RunData(path=run_dir, info=read_run(run_dir))
    if data.info.reason:
        data.missing.append(data.info.reason)
    data.config = _config(run_dir)
    data.state = read_state(run_dir)
    op_set = data.config.get("op_set", "darts")
    data.primitives = primitives(bool(data.config.get("extra_ops", False)), op_set if op_set in OP_SETS else "darts")
    _valuation(data)
    _decisions(data)
    _stages(data)
    return data


def _config(run_dir: Path) -> dict:
    try:
        config = read_yaml(run_dir / CONFIG)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}  # read_run has named the problem
    return config if isinstance(config, dict) else {}


def _matrix_ok(matrix, ops: int, rows_may_be_null: bool) -> bool:
    if not isinstance(matrix, list) or len(matrix) != NUM_EDGES:
        return False
    return all(
        (row is None and rows_may_be_null) or (isinstance(row, list) and len(row) == ops and all(map(is_num, row)))
        for row in matrix
    )


def _switches_ok(switches, prims) -> bool:
    return (
        isinstance(switches, list)
        and len(switches) == NUM_EDGES
        and all(isinstance(ops, list) and all(op in prims for op in ops) for ops in switches)
    )


def _valuation(data: RunData) -> None:
    folder = data.path / VALUATION
    prims = data.primitives
    paths = sorted(
        (p for p in folder.glob("model*.json") if MODEL_FILE.fullmatch(p.name)),
        key=lambda p: int(MODEL_FILE.fullmatch(p.name).group(1)),
    )
    for path in paths:
        record = read_json_or_none(path)
        if (
            not isinstance(record, dict)
            or record.get("primitives", list(prims)) != list(prims)
            or not _matrix_ok(record.get("matrix"), len(prims), rows_may_be_null=True)
            or not _switches_ok(record.get("initial_switches"), prims)
        ):
            data.missing.append(f"{VALUATION}/{path.name} unreadable or not a valuation record")
            continue
        data.models.append(record)
    average_path = folder / "average.json"
    if average_path.exists():
        average = read_json_or_none(average_path)
        if isinstance(average, dict) and _matrix_ok(average.get("matrix"), len(prims), rows_may_be_null=False):
            data.average = average["matrix"]
        else:
            data.missing.append(f"{VALUATION}/average.json unreadable or not a valuation matrix")


def _decisions(data: RunData) -> None:
    path = data.path / DECISIONS
    if not path.exists():
        return
    entries = read_json_or_none(path)
    if not isinstance(entries, list):
        data.missing.append(f"{DECISIONS} unreadable")
        return
    for i, entry in enumerate(entries):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and _switches_ok(entry.get("switches"), data.primitives)
        ):
            data.missing.append(f"{DECISIONS} entry {i} is not a decision (the entries from it on are left out)")
            return
        scores = entry.get("scores")
        if scores is not None and not (isinstance(scores, dict) and all(map(is_num, scores.values()))):
            entry = {k: v for k, v in entry.items() if k != "scores"}
            data.missing.append(f"{DECISIONS} entry {i} ({entry['name']}): scores unreadable")
        data.decisions.append(entry)


def _stages(data: RunData) -> None:
    """stages.jsonl when the run wrote it, else the epoch lines of the logs. A run resumed
    mid-stage repeats some epochs: the last record of each (tag, epoch, rank) wins."""
    keys = ("tag", "epoch", "epochs", "lr", "loss", "top1", "rank")
    records = []
    path = data.path / STAGES
    if path.is_file():
        try:
            lines = read_text(path).splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
            data.missing.append(f"{STAGES} unreadable")
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if isinstance(record, dict) and all(k in record for k in keys) and all(is_num(record[k]) for k in keys[1:]):
                records.append(record)
        data.stages_source = STAGES
    else:
        for log in sorted(data.path.glob("log_rank*.txt")):
            try:
                text = read_text(log, errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                m = LOG_EPOCH.search(line)
                if m:
                    try:
                        values = [int(m[1]), m[2], int(m[3]), int(m[4]), float(m[5]), float(m[6]), float(m[7])]
                    except ValueError:
                        continue
                    rank, tag, epoch, epochs, lr, loss, top1 = values
                    records.append(dict(tag=tag, epoch=epoch, epochs=epochs, lr=lr, loss=loss, top1=top1, rank=rank))
        data.stages_source = "log_rank*.txt" if records else ""
    last = {(r["tag"], r["epoch"], r["rank"]): r for r in records}
    data.stages = list(last.values())
