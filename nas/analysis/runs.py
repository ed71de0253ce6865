"""Reading run directories: searches (search_evolutionary.py / search_supernet.py) and
evaluations (train_eval_cifar.py / train_eval_imagenet.py, whose config.yaml names an `eval_task`).

A run directory holds config.yaml and state.json from the start, and genotype.json and
summary.json once finished. A run is *finished* when both final files are present and
valid, *unfinished* while state.json says it is running, and *broken* otherwise. An
evaluation's state.json also says what it trains (params, MACs) and how far it got.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nas.core.errors import UserError
from nas.core.files import read_yaml
from nas.core.rundir import read_json_or_none, read_state


@dataclass
class RunInfo:
    path: Path
    status: str  # finished | unfinished | broken
    reason: str = ""  # why unfinished/broken, for the table
    seed: int | None = None
    method: str | None = None
    scores: str | None = None  # a search's: perturb-val, or random (a control, --scores random)
    genotype: object = None  # nas.genotype.Genotype when readable
    wall_time_s: float | None = None
    gpu_hours: float | None = None
    val_acc: float | None = None
    dataset: str | None = None  # the data set the run read (its root's own name where it has one)
    summary: dict = field(default_factory=dict)
    kind: str = "search"  # search | evaluation
    # evaluations: what the run really trains and how far it got (summary.json, else state.json)
    arch: str | None = None
    best_top1: float | None = None
    best_epoch: int | None = None
    final_top1: float | None = None
    final_top5: float | None = None
    epochs_done: int | None = None
    epochs_planned: int | None = None
    params_m: float | None = None
    macs_m: float | None = None


def search_group(run: RunInfo) -> str:
    """The group of a search, as tables and reports name it: its method, and whether a control."""
    method = run.method or "unknown method"
    return method if run.scores == "perturb-val" else f"{method}, {run.scores} scores (control)"


def is_evaluation(config: dict, summary: dict) -> bool:
    return "eval_task" in config or "eval_task" in summary


def read_run(run_dir) -> RunInfo:
    """Everything the collector reports about one run; never raises on a damaged run."""
    from nas.genotype import load_genotype_file

    run_dir = Path(run_dir)
    info = RunInfo(path=run_dir, status="broken")
    problems = []

    config = None
    try:
        config = read_yaml(run_dir / "config.yaml")
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
    # runs before --scores existed were all perturb-val's
    info.scores = str(config.get("scores", summary.get("scores", "perturb-val")))
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
    if is_evaluation(config, summary):
        return _evaluation(info, config, summary, state or {}, problems)
    # what the search read (runs before data_label was written: what their configuration named)
    info.dataset = summary.get("data_label", config.get("dataset"))
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


def _evaluation(info: RunInfo, config: dict, summary: dict, state: dict, problems: list) -> RunInfo:
    """An evaluation is finished with its summary.json, unfinished before (its last epoch's
    figures come from state.json, which runs older than it lack)."""
    info.kind = "evaluation"
    source = summary or state
    info.arch = config.get("arch", summary.get("arch"))
    if config.get("reduce_arch"):
        info.arch = f"{info.arch} + {config['reduce_arch']}"
    info.dataset = source.get("data_label", source.get("dataset", config.get("dataset")))
    for name, kind in (
        ("best_top1", float),
        ("best_epoch", int),
        ("final_top1", float),
        ("final_top5", float),
        ("params_m", float),
        ("macs_m", float),
    ):
        setattr(info, name, _typed(source.get(name), kind))
    info.epochs_done = _typed(summary.get("epochs", state.get("epoch")), int)
    info.epochs_planned = _typed(config.get("epochs", state.get("epochs")), int)
    info.wall_time_s = _typed(source.get("wall_time_s", source.get("elapsed_s")), float)
    if summary:
        info.status = "broken" if problems else "finished"
    elif not state or state.get("status") == "running":
        info.status = "unfinished"
        problems.insert(0, f"epoch {info.epochs_done}/{info.epochs_planned}" if state else "no state.json")
    else:
        problems.append("state.json says finished but summary.json is missing")
    info.reason = ", ".join(problems)
    return info


def _typed(value, kind):
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None
