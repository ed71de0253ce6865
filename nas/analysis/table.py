"""The tables of the runs under a root (Markdown / CSV), searches and evaluations apart, and
the paper's top-2 genotype pair."""

from __future__ import annotations

import csv
import functools
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from nas.analysis.runs import RunInfo, read_run, search_group
from nas.core.errors import UserError
from nas.core.rundir import find_run_dirs
from nas.genotype import Genotype, combine, genotype_from_dict
from nas.space.primitives import short_name

COLUMNS = ("run", "seed", "method", "val_acc", "genotype", "params_m", "wall_time", "gpu_hours", "status", "nb301")
HEADERS = (
    "run",
    "seed",
    "method",
    "val_acc (%)",
    "genotype (normal cell)",
    "params (M), CIFAR-10 eval net",
    "search time",
    "GPU-hours",
    "status",
    "NB301 (%)",
)
# an evaluation: the network it really trained, and best / final validation accuracy
EVAL_COLUMNS = (
    "run",
    "seed",
    "arch",
    "dataset",
    "best_top1",
    "best_epoch",
    "final_top1",
    "final_top5",
    "epochs",
    "params_m",
    "macs_m",
    "wall_time",
    "gpu_hours",
    "status",
)
EVAL_HEADERS = (
    "run",
    "seed",
    "arch",
    "data set",
    "best top-1 (%)",
    "best epoch",
    "final top-1 (%)",
    "final top-5 (%)",
    "epochs done/planned",
    "params (M)",
    "MACs (M)",
    "time",
    "GPU-hours",
    "status",
)
# CIFAR-10 evaluation network at the published size (docs/method.md, "Evaluation").
EVAL_C, EVAL_LAYERS, EVAL_CLASSES = 36, 20, 10


def short_genotype(g: Genotype) -> str:
    """e.g. `sep3:0 skip:1 | sep3:0 sep5:2 | ...`; the reduction cell follows ` / R ` when different."""

    def cell(pairs):
        return " | ".join(
            " ".join(f"{short_name(op)}:{j}" for op, j in pairs[i : i + 2]) for i in range(0, len(pairs), 2)
        )

    text = cell(g.normal)
    return text if g.reduce == g.normal else f"{text} / R {cell(g.reduce)}"


@functools.lru_cache(maxsize=None)  # seeds often agree on a cell
def eval_params_m(g: Genotype) -> float:
    """Parameters (M, auxiliary head excluded) of the CIFAR-10 evaluation network of g."""
    from nas.evaluation.cost import count_parameters_m
    from nas.evaluation.networks import NetworkCIFAR

    return count_parameters_m(NetworkCIFAR(EVAL_C, EVAL_CLASSES, EVAL_LAYERS, False, g))


RANDOM_CELLS = "random cells (genotype sample)"


@dataclass
class Point:
    """One seed of a group (a random cell: one cell), with the best top-1 of its cell's evaluations."""

    label: str
    val_acc: Optional[float] = None
    best_top1: list[float] = field(default_factory=list)

    @property
    def top1(self) -> Optional[float]:
        """The point's best top-1: the mean when its cell was evaluated more than once."""
        return statistics.fmean(self.best_top1) if self.best_top1 else None


@dataclass
class Group:
    name: str  # search_group's name, or RANDOM_CELLS
    control: bool  # a control (random scores, random cells), not the method
    points: list[Point]

    @property
    def unit(self) -> str:
        return "cell" if self.name == RANDOM_CELLS else "seed"

    def values(self, metric: str) -> list[float]:
        values = [p.val_acc if metric == "val_acc" else p.top1 for p in self.points]
        return [v for v in values if v is not None]


def _group_key(run: RunInfo) -> tuple:
    return (run.method or "", run.scores != "perturb-val", run.scores or "")


def sampled_cells(directory: Path) -> dict[Path, tuple[Genotype, dict]]:
    """The cells `genotype sample` wrote into `directory` (genotype JSON with a "sampled" source)."""
    cells = {}
    for path in sorted(directory.glob("*.json")):
        try:
            d = json.loads(path.read_text())
            source = d.get("source") if isinstance(d, dict) else None
            if isinstance(source, dict) and "sampled" in source:
                cells[path] = (genotype_from_dict(d), source)
        except (OSError, UnicodeDecodeError, ValueError, UserError):
            continue  # not a sampled cell: the evaluations of other cells are not grouped
    return cells


class Collection:
    """Every run under a root, with NB301 predictions when a surrogate is given."""

    def __init__(self, root, surrogate=None):
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"run root {root} is not a directory")
        self.root = root
        self.runs: list[RunInfo] = [read_run(d) for d in find_run_dirs(root)]
        self.nb301: dict[Path, float] = {}
        if surrogate is not None:
            self.add_predictions(surrogate)

    def add_predictions(self, surrogate) -> None:
        for run in self.searches:
            if run.genotype is not None:
                self.nb301[run.path] = surrogate.predict(run.genotype)

    def name(self, run: RunInfo) -> str:
        return str(run.path.relative_to(self.root)) if run.path != self.root else run.path.name

    @property
    def searches(self) -> list[RunInfo]:
        """The searches, grouped by method and control (the method first), in path order within a group."""
        return sorted((r for r in self.runs if r.kind == "search"), key=_group_key)

    def groups(self) -> list[Group]:
        """The finished searches by method and control, one point per seed, then the random cells;
        each finished evaluation counts for the cell beside it that it trained: a search in its
        own directory with the same genotype, or a sampled cell file there."""
        groups: dict[str, Group] = {}
        points: dict[Path, Point] = {}
        finished = [r for r in self.searches if r.status == "finished" and r.genotype is not None]
        for run in sorted(finished, key=lambda r: (_group_key(r), r.seed if r.seed is not None else -1)):
            name = search_group(run)
            group = groups.setdefault(name, Group(name, run.scores != "perturb-val", []))
            points[run.path] = Point(f"seed {run.seed}", run.val_acc)
            group.points.append(points[run.path])
        cells: dict[Path, dict] = {}
        for ev in self.evaluations:
            if ev.status != "finished" or ev.genotype is None or ev.best_top1 is None:
                continue
            beside = [r for r in finished if r.path.parent == ev.path.parent and r.genotype == ev.genotype]
            if beside:
                points[beside[0].path].best_top1.append(ev.best_top1)
                continue
            directory = ev.path.parent
            if directory not in cells:
                cells[directory] = sampled_cells(directory)
            for path, (g, source) in cells[directory].items():
                if g == ev.genotype:
                    if path not in points:
                        group = groups.setdefault(RANDOM_CELLS, Group(RANDOM_CELLS, True, []))
                        points[path] = Point(
                            f"cell {source.get('index', path.stem)} (sample seed {source.get('seed')})"
                        )
                        group.points.append(points[path])
                    points[path].best_top1.append(ev.best_top1)
                    break
        return sorted(groups.values(), key=lambda g: g.name == RANDOM_CELLS)

    @property
    def evaluations(self) -> list[RunInfo]:
        return [r for r in self.runs if r.kind == "evaluation"]

    def eval_rows(self) -> list[dict]:
        """One row per evaluation run: the network it trained (params, MACs measured at its start)."""
        return [
            {
                "run": self.name(run),
                "seed": run.seed,
                "arch": run.arch,
                "dataset": run.dataset,
                "best_top1": run.best_top1,
                "best_epoch": run.best_epoch,
                "final_top1": run.final_top1,
                "final_top5": run.final_top5,
                "epochs": f"{_or_dash(run.epochs_done)}/{_or_dash(run.epochs_planned)}",
                "params_m": run.params_m,
                "macs_m": run.macs_m,
                "wall_time": run.wall_time_s,
                "gpu_hours": run.gpu_hours,
                "status": run.status + (f" ({run.reason})" if run.reason else ""),
            }
            for run in self.evaluations
        ]

    def rows(self) -> list[dict]:
        """One row per search run; params: the CIFAR-10 evaluation network its cell implies."""
        rows = []
        for run in self.searches:
            status = run.status + (f" ({run.reason})" if run.reason else "")
            rows.append(
                {
                    "run": self.name(run),
                    "seed": run.seed,
                    "method": search_group(run) if run.method else None,
                    "val_acc": run.val_acc,
                    "genotype": short_genotype(run.genotype) if run.genotype else None,
                    "params_m": eval_params_m(run.genotype) if run.genotype else None,
                    "wall_time": run.wall_time_s,
                    "gpu_hours": run.gpu_hours,
                    "status": status,
                    "nb301": self.nb301.get(run.path),
                }
            )
        return rows

    def top(self, k: int) -> tuple[list[tuple[RunInfo, float]], str]:
        """The k best finished runs with their scores, and what they were ranked by."""
        finished = [r for r in self.searches if r.status == "finished"]
        if self.nb301:
            ranked_by = "NAS-Bench-301 prediction"
            scored = [(r, self.nb301[r.path]) for r in finished]
        else:
            ranked_by = "val_acc of summary.json (give --nb301-models DIR to rank by NAS-Bench-301)"
            scored = [(r, r.val_acc) for r in finished if r.val_acc is not None]
        if len(scored) < k:
            raise UserError(
                f"{len(scored)} finished run(s) under {self.root} can be ranked by {ranked_by}: expected at least {k}"
            )
        scored.sort(key=lambda rs: rs[1], reverse=True)
        return scored[:k], ranked_by

    def top_pair(self) -> tuple[Genotype, dict, str]:
        """Normal cell of the best run, reduction cell of the second best (the paper's pairing)."""
        ((best, s1), (second, s2)), ranked_by = self.top(2)
        source = {"normal": self.name(best), "reduce": self.name(second), "ranked_by": ranked_by, "scores": [s1, s2]}
        return combine(best.genotype, second.genotype), source, ranked_by


def group_lines(groups: list[Group]) -> list[str]:
    """The groups side by side: how many seeds, and val_acc and best top-1 across them."""
    lines = []
    for g in groups:
        unit = g.unit
        parts = [f"{len(g.points)} {unit}{'s' if len(g.points) != 1 else ''}"]
        for metric, label in (("val_acc", "val_acc"), ("top1", "best top-1 of the evaluated cells")):
            values = g.values(metric)
            if values:
                spread = f"median {statistics.median(values):.2f} % (min {min(values):.2f}, max {max(values):.2f})"
                parts.append(
                    f"{label} {spread if len(values) > 1 else f'{values[0]:.2f} % (one {unit} only: no spread)'}"
                )
        lines.append(f"{g.name}{' [control]' if g.control else ''}: " + "; ".join(parts))
    return lines


def markdown(rows: list[dict], columns=COLUMNS, headers=HEADERS) -> str:
    cells = [[_fmt(col, row[col]) for col in columns] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """A Markdown cell on one line: `|` escaped, and a control character in a run's name (a newline,
    a terminal escape) shown as its escape sequence rather than sent to the terminal."""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return text.replace("|", "\\|")


def csv_text(rows: list[dict], columns=COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def _or_dash(value) -> str:
    return "-" if value is None else str(value)


def _fmt(col: str, value) -> str:
    if value is None:
        return "-"
    if col == "params_m":  # an evaluation may train a tiny smoke network
        return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"
    if col in ("val_acc", "best_top1", "final_top1", "final_top5", "macs_m"):
        return f"{value:.2f}"
    if col == "wall_time":
        minutes, seconds = divmod(int(round(value)), 60)
        return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
    if col == "gpu_hours":
        return f"{value:.2f}"
    if col == "nb301":
        return f"{value:.2f}"
    return str(value)
