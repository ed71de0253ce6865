"""Reading search run directories (the layout search_evolutionary.py / search_supernet.py write).

A run directory holds config.yaml and state.json from the start, and genotype.json and
summary.json once finished. A run is *finished* when both final files are present and
valid, *unfinished* while state.json says it is running, and *broken* otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nas.core.errors import UserError
from nas.core.rundir import read_json_or_none, read_state


@dataclass
class RunInfo:
    path: Path
    status: str  # finished | unfinished | broken
    reason: str = ""  # why unfinished/broken, for the table
    seed: int | None = None
    method: str | None = None
    genotype: object = None  # nas.genotype.Genotype when readable
    wall_time_s: float | None = None
    gpu_hours: float | None = None
    val_acc: float | None = None
    summary: dict = field(default_factory=dict)


def read_run(run_dir) -> RunInfo:
    """Everything the collector reports about one run; never raises on a damaged run."""
    from nas.genotype import load_genotype_file

    run_dir = Path(run_dir)
    info = RunInfo(path=run_dir, status="broken")
    problems = []

    config = None
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except FileNotFoundError:
        problems.append("no config.yaml")
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        problems.append("config.yaml unreadable")
    if config is not None and not isinstance(config, dict):
        problems.append("config.yaml is not a mapping")
        config = None
    config = config or {}

    summary = read_json_or_none(run_dir / "summary.json")
    if (run_dir / "summary.json").exists() and not isinstance(summary, dict):
        problems.append("summary.json unreadable")
    summary = summary if isinstance(summary, dict) else {}
    info.summary = summary

    info.seed = _typed(config.get("seed", summary.get("seed")), int)
    info.method = config.get("method", summary.get("method"))
    info.wall_time_s = _typed(summary.get("wall_time_s"), float)
    info.gpu_hours = _typed(summary.get("gpu_hours"), float)
    info.val_acc = _typed(summary.get("val_acc"), float)

    has_genotype = (run_dir / "genotype.json").is_file()
    if has_genotype:
        try:
            info.genotype = load_genotype_file(run_dir / "genotype.json")
        except UserError:
            problems.append("genotype.json invalid")

    state = read_state(run_dir)
    if has_genotype or summary:
        if not has_genotype:
            problems.append("no genotype.json")
        if not summary:
            problems.append("no summary.json")
    elif state is None:
        problems.append("no readable state.json")
    elif state.get("status") == "finished":
        problems.append("state.json says finished but genotype.json is missing")
    else:
        info.status = "unfinished"
        info.reason = f"phase {state.get('phase', '?')}"
        if problems:
            info.reason += "; " + ", ".join(problems)
        return info

    if problems:
        info.reason = ", ".join(problems)
    else:
        info.status = "finished"
    return info


def _typed(value, kind):
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None
