"""The table of a sweep's search runs (Markdown / CSV) and the paper's top-2 genotype pair."""
from __future__ import annotations

import csv
import functools
import io
from pathlib import Path

from nas.core.errors import UserError
from nas.space.primitives import DUPLICATE_SLOT
from nas.genotype import Genotype, combine
from nas.analysis.runs import RunInfo, read_run
from nas.core.rundir import find_run_dirs

COLUMNS = ("run", "seed", "method", "genotype", "params_m", "wall_time", "gpu_hours", "status", "nb301")
HEADERS = ("run", "seed", "method", "genotype (normal cell)", "params (M)", "search time", "GPU-hours", "status", "NB301 (%)")
SHORT_OPS = {
    "max_pool_3x3": "max3", "avg_pool_3x3": "avg3", "skip_connect": "skip", "sep_conv_3x3": "sep3",
    "sep_conv_5x5": "sep5", "dil_conv_3x3": "dil3", "dil_conv_5x5": "dil5", "sep_conv_7x7": "sep7",
    DUPLICATE_SLOT: "dil5'",  # the original's second dil_conv_5x5 slot (--op_set original)
}
# CIFAR-10 evaluation network at the published size (docs/method.md, "Evaluation").
EVAL_C, EVAL_LAYERS, EVAL_CLASSES = 36, 20, 10


def short_genotype(g: Genotype) -> str:
    """e.g. `sep3:0 skip:1 | sep3:0 sep5:2 | ...`; the reduction cell follows ` / R ` when different."""
    def cell(pairs):
        return " | ".join(" ".join(f"{SHORT_OPS.get(op, op)}:{j}" for op, j in pairs[i : i + 2]) for i in range(0, len(pairs), 2))

    text = cell(g.normal)
    return text if g.reduce == g.normal else f"{text} / R {cell(g.reduce)}"


@functools.lru_cache(maxsize=None)  # seeds often agree on a cell
def eval_params_m(g: Genotype) -> float:
    """Parameters (M, auxiliary head excluded) of the CIFAR-10 evaluation network of g."""
    from nas.evaluation.networks import NetworkCIFAR
    from nas.evaluation.cost import count_parameters_m

    return count_parameters_m(NetworkCIFAR(EVAL_C, EVAL_CLASSES, EVAL_LAYERS, False, g))


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
            for run in self.runs:
                if run.genotype is not None:
                    self.nb301[run.path] = surrogate.predict(run.genotype)

    def name(self, run: RunInfo) -> str:
        return str(run.path.relative_to(self.root)) if run.path != self.root else run.path.name

    def rows(self) -> list[dict]:
        rows = []
        for run in self.runs:
            status = run.status + (f" ({run.reason})" if run.reason else "")
            rows.append({
                "run": self.name(run),
                "seed": run.seed,
                "method": run.method,
                "genotype": short_genotype(run.genotype) if run.genotype else None,
                "params_m": eval_params_m(run.genotype) if run.genotype else None,
                "wall_time": run.wall_time_s,
                "gpu_hours": run.gpu_hours,
                "status": status,
                "nb301": self.nb301.get(run.path),
            })
        return rows

    def top(self, k: int) -> tuple[list[tuple[RunInfo, float]], str]:
        """The k best finished runs with their scores, and what they were ranked by."""
        finished = [r for r in self.runs if r.status == "finished"]
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


def markdown(rows: list[dict]) -> str:
    cells = [[_fmt(col, row[col]) for col in COLUMNS] for row in rows]
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def _fmt(col: str, value) -> str:
    if value is None:
        return "-"
    if col == "params_m":
        return f"{value:.2f}"
    if col == "wall_time":
        minutes, seconds = divmod(int(round(value)), 60)
        return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
    if col == "gpu_hours":
        return f"{value:.2f}"
    if col == "nb301":
        return f"{value:.2f}"
    return str(value)
