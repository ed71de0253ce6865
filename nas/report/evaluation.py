"""The report of one evaluation run (train_eval_cifar.py / train_eval_imagenet.py): the curves of
every epoch, the schedules, the best epoch, the network's size, the cell, time per epoch and
the configuration, in the style of the search report. A resumed run is drawn across its resume
(marked); an unfinished one up to its last epoch."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nas.analysis.runs import RunInfo, read_run
from nas.core.config import to_dict
from nas.core.files import read_text, read_yaml
from nas.core.rundir import CONFIG, EPOCHS, SUMMARY, read_state
from nas.genotype import distinct_cells, format_literal
from nas.report import figures as F
from nas.report.load import is_num
from nas.report.page import config_table, details, esc, img, missing, numeric, page, table

SECTIONS = (
    ("summary", "Summary"),
    ("curves", "Loss and accuracy"),
    ("schedules", "Schedules"),
    ("cell", "Cell"),
    ("time", "Time per epoch"),
    ("config", "Configuration"),
)
KEYS = ("epoch", "lr", "drop_path_prob", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "seconds")
# the epoch line of EvalRun.train_epoch (runs older than epochs.jsonl)
LOG_EPOCH = re.compile(
    r"\[rank 0\] epoch (\d+)/\d+ lr (\S+) drop_path (\S+) \| train loss (\S+) top1 (\S+) \| "
    r"val loss (\S+) top1 (\S+) top5 (\S+) \| best top1 \S+ \(epoch \d+\) \| (\S+)s\s*$"
)
LOG_RESUMED = re.compile(r"evaluation in .* \(resumed after epoch (\d+),")


@dataclass
class EvalData:
    path: Path
    info: RunInfo
    config: dict = field(default_factory=dict)
    state: dict | None = None
    epochs: list[dict] = field(default_factory=list)  # one record per epoch (the last written wins)
    resumes: list[int] = field(default_factory=list)  # epochs after which a resumed run continued
    source: str = ""
    missing: list[str] = field(default_factory=list)


def read_eval_data(run_dir) -> EvalData:
    run_dir = Path(run_dir)
    data = EvalData(path=run_dir, info=read_run(run_dir))
    if data.info.reason and data.info.status == "broken":
        data.missing.append(data.info.reason)
    try:
        loaded = read_yaml(run_dir / CONFIG)
        data.config = loaded if isinstance(loaded, dict) else {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data.missing.append(f"{CONFIG} unreadable")
    data.state = read_state(run_dir)
    _epochs(data)
    return data


def _lines(data: EvalData, path: Path) -> list[str]:
    try:
        return read_text(path, errors="replace").splitlines()
    except OSError:
        data.missing.append(f"{path.name} unreadable")
        return []


def _epochs(data: EvalData) -> None:
    """epochs.jsonl when the run wrote it, else the epoch lines of log_rank0.txt."""
    records, path = [], data.path / EPOCHS
    if path.is_file():
        data.source = EPOCHS
        for line in _lines(data, path):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if isinstance(record, dict) and is_num(record.get("resumed_after")):
                data.resumes.append(int(record["resumed_after"]))
            elif isinstance(record, dict) and all(is_num(record.get(k)) for k in KEYS):
                records.append(record)
    elif (data.path / "log_rank0.txt").is_file():
        for line in _lines(data, data.path / "log_rank0.txt"):
            m, resumed = LOG_EPOCH.search(line), LOG_RESUMED.search(line)
            if resumed:
                data.resumes.append(int(resumed[1]))
            elif m:
                try:
                    records.append(dict(zip(KEYS, [int(m[1])] + [float(v) for v in m.groups()[1:]])))
                except ValueError:
                    continue
        data.source = "log_rank0.txt" if records else ""
    last = {r["epoch"]: r for r in records}  # an epoch redone after a kill: its last record
    data.epochs = [last[e] for e in sorted(last)]


def eval_report(data: EvalData, renderer: F.Renderer) -> str:
    builders = {
        "summary": _summary,
        "curves": _curves,
        "schedules": _schedules,
        "cell": _cell,
        "time": _time,
        "config": _config,
    }
    with F.literal_text():
        sections = [(anchor, title, builders[anchor](data, renderer)) for anchor, title in SECTIONS]
    return page(f"evaluation report: {data.path.name}", _header(data), sections)


def _header(data: EvalData) -> str:
    info, status = data.info, data.info.status
    text = (
        "finished"
        if status == "finished"
        else f"unfinished ({info.reason}): this report covers the epochs done so far"
        if status == "unfinished"
        else "broken: " + (info.reason or "unreadable files")
    )
    problems = "".join(f"<li>{esc(p)}</li>" for p in data.missing)
    return (
        f"<h1>Evaluation report: {esc(data.path.name)}</h1>\n<p><code>{esc(data.path)}</code></p>\n"
        f'<div class="banner {status}" id="status">status: {esc(text)}</div>\n'
        + (f'<div class="missing" id="problems">missing or damaged:<ul>{problems}</ul></div>' if problems else "")
    )


def _best(data: EvalData):
    """(best epoch, its top-1): the run's own record, else the epochs' maximum."""
    info = data.info
    if info.best_epoch and is_num(info.best_top1):
        return info.best_epoch, info.best_top1
    if data.epochs:
        best = max(data.epochs, key=lambda r: r["val_top1"])
        return best["epoch"], best["val_top1"]
    return None, None


def _summary(data: EvalData, renderer) -> str:
    info, s = data.info, data.info.summary
    best_epoch, best_top1 = _best(data)
    final = data.epochs[-1] if data.epochs else {}
    rows = [
        ("task", data.config.get("eval_task", "-")),
        ("arch", info.arch or "-"),
        ("data set", info.dataset or "-"),
        ("seed", info.seed if info.seed is not None else "-"),
        ("status", info.status),
        (
            "epochs done / planned",
            f"{info.epochs_done if info.epochs_done is not None else len(data.epochs)}"
            f" / {info.epochs_planned if info.epochs_planned is not None else '-'}",
        ),
        ("best top-1 (%)", numeric(best_top1)),
        ("best epoch", best_epoch if best_epoch else "-"),
        ("final top-1 (%)", numeric(final.get("val_top1", info.final_top1))),
        ("final top-5 (%)", numeric(final.get("val_top5", info.final_top5))),
        ("params (M, auxiliary head excluded)", numeric(info.params_m, 6)),
        ("MACs (M)", numeric(info.macs_m)),
        ("wall time (s)", numeric(info.wall_time_s)),
        ("GPU-hours", numeric(info.gpu_hours, 4)),
        ("world size", s.get("world_size", "-")),
        ("device", s.get("device", "-")),
        ("GPU model", s.get("gpu_model") or "-"),
        ("resumed after epoch", ", ".join(map(str, data.resumes)) or "never"),
    ]
    note = "" if s else missing(f"no {SUMMARY} (written when the run finishes): the figures use the epochs so far")
    return table(None, rows, "summary") + note


def _no_epochs(data: EvalData) -> str:
    return missing(f"no epoch recorded yet (no {EPOCHS}, no epoch lines in log_rank0.txt)")


def _curves(data: EvalData, renderer) -> str:
    if not data.epochs:
        return _no_epochs(data)
    best_epoch, _ = _best(data)
    fig = renderer.add("curves", F.eval_curves(data.epochs, best_epoch, data.resumes))
    rows = [
        [
            r["epoch"],
            numeric(r["train_loss"], 4),
            numeric(r["train_top1"]),
            numeric(r["val_loss"], 4),
            (esc(f"{r['val_top1']:.2f}"), "kept" if r["epoch"] == best_epoch else "num"),
            numeric(r["val_top5"]),
        ]
        for r in data.epochs
    ]
    source = "" if data.source == EPOCHS else f" (this run predates {EPOCHS})"
    return (
        img(fig, "loss and top-1 per epoch")
        + f"<p>from {esc(data.source)}{esc(source)}; {len(data.epochs)} epochs</p>"
        + details(
            "every epoch as numbers (highlighted: the best)",
            table(
                ("epoch", "train loss", "train top-1 (%)", "val loss", "val top-1 (%)", "val top-5 (%)"), rows, "epochs"
            ),
        )
    )


def _schedules(data: EvalData, renderer) -> str:
    if not data.epochs:
        return _no_epochs(data)
    fig = renderer.add("schedules", F.eval_schedules(data.epochs, data.resumes))
    return img(fig, "learning rate and drop-path probability per epoch")


def _cell(data: EvalData, renderer) -> str:
    g = data.info.genotype
    if g is None:
        return missing("no readable genotype.json")
    titles = {"cell": "the cell (normal and reduction)", "normal": "normal cell", "reduce": "reduction cell"}
    parts = [
        f"<h3>{titles[kind]}</h3>" + img(renderer.add_cell(kind, cell, concat), f"{kind} cell", "fig cell")
        for kind, cell, concat in distinct_cells(g)
    ]
    parts.append(f'<h3>DARTS literal</h3><pre id="literal">{esc(format_literal(g))}</pre>')
    return "\n".join(parts)


def _time(data: EvalData, renderer) -> str:
    if not data.epochs:
        return _no_epochs(data)
    seconds = [r["seconds"] for r in data.epochs]
    fig = renderer.add("epoch_time", F.epoch_times(data.epochs, data.resumes))
    rows = [
        ("epochs", len(seconds)),
        ("mean seconds per epoch", numeric(sum(seconds) / len(seconds))),
        ("slowest epoch (s)", numeric(max(seconds))),
        ("sum (s)", numeric(sum(seconds))),
    ]
    return img(fig, "seconds per epoch") + table(None, rows, "time")


def _config(data: EvalData, renderer) -> str:
    if not data.config:
        return missing("no readable config.yaml")
    return config_table(data.config, _eval_defaults(data.config.get("eval_task")))


def _eval_defaults(task) -> dict | None:
    from nas.evaluation.config import CifarEvalConfig, ImageNetEvalConfig

    cls = {"cifar": CifarEvalConfig, "imagenet": ImageNetEvalConfig}.get(task)
    return to_dict(cls()) if cls else None
