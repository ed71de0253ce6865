"""The report's pictures: matplotlib figures (no pyplot, so no global state or display) and the
graphviz cell plot, rendered to PNG for the page and, with --figures DIR, to PNG and SVG files."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import matplotlib
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from nas.core.errors import UserError
from nas.core.files import atomic_write
from nas.space.primitives import short_name

DPI = 110
KEPT, OTHER = "#d62728", "#9ecae1"  # the kept candidate in red, the others in pale blue
SCORE_CMAP = "RdBu_r"  # negative scores (the operation matters) blue, positive red


@dataclass
class Rendered:
    name: str
    png: bytes
    svg: Optional[bytes]  # only when the figures are also written as files


class Renderer:
    """Renders figures once each; keeps what it rendered for the page and the --figures files."""

    def __init__(self, *, svg: bool, prefix: str = ""):
        self.svg = svg
        self.prefix = prefix  # of the file names written by write_files
        self.rendered: list[Rendered] = []

    def add(self, name: str, fig: Figure) -> Rendered:
        def save(fmt: str) -> bytes:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=DPI, bbox_inches="tight")
            return buf.getvalue()

        out = Rendered(name, save("png"), save("svg") if self.svg else None)
        self.rendered.append(out)
        return out

    def add_cell(self, name: str, cell, concat) -> Rendered:
        """The existing graphviz plot of nas.genotype.plot."""
        import graphviz

        from nas.genotype.plot import cell_graph

        graph = cell_graph(cell, concat)
        try:
            out = Rendered(name, graph.pipe(format="png"), graph.pipe(format="svg") if self.svg else None)
        except graphviz.ExecutableNotFound:
            raise UserError(
                "graphviz's `dot` program is not installed: run `make setup` or `apt-get install graphviz`"
            ) from None
        self.rendered.append(out)
        return out

    def write_files(self, directory: Path) -> list[Path]:
        written = []
        for r in self.rendered:
            for ext, data in (("png", r.png), ("svg", r.svg)):
                path = Path(directory) / f"{self.prefix}{r.name}.{ext}"
                try:
                    atomic_write(path, lambda f, data=data: f.write(data), mode="wb")
                except OSError as exc:
                    raise UserError(f"cannot write figure {path}: {exc.strerror}") from None
                written.append(path)
        return written


def literal_text():
    """Figures built inside show every text as written: names read from a run's files (decision
    names, stage tags, score keys) may hold `$`, which matplotlib would parse as mathtext and fail on."""
    return matplotlib.rc_context({"text.parse_math": False})


def _centred_norm(values) -> TwoSlopeNorm:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    bound = bound or 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)


def _matrix_axes(ax, matrix: np.ndarray, prims: Sequence[str], norm, *, annotate: bool, labels: bool = True):
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=SCORE_CMAP, norm=norm, aspect="auto")
    ax.set_facecolor("#eeeeee")  # edges not yet valued
    ax.set_xticks(range(len(prims)))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_xticklabels([short_name(op) for op in prims] if labels else [], rotation=0, fontsize=8)
    ax.set_yticklabels([f"e{e}" for e in range(matrix.shape[0])] if labels else [], fontsize=8)
    if annotate:
        for (e, o), v in np.ndenumerate(matrix):
            if np.isfinite(v):
                dark = abs(norm(v) - 0.5) > 0.35
                ax.text(o, e, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
    return image


def _box(ax, row: int, col: int, color: str, width: float = 2.0):
    ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=width))


def average_heatmap(average, prims, kept: Optional[list[list[str]]], *, control: bool = False) -> Figure:
    """The population-average scores, 14 edges x operations, centred at 0; the coarse
    selection's two kept operations per edge outlined."""
    matrix = np.array(average, dtype=float)
    fig = Figure(figsize=(1.0 + 0.85 * len(prims), 6.2))
    ax = fig.subplots()
    norm = _centred_norm(matrix)
    image = _matrix_axes(ax, matrix, prims, norm, annotate=True)
    if kept:
        for e, ops in enumerate(kept):
            for op in ops:
                _box(ax, e, prims.index(op), "black", 2.2)
    ax.set_title(
        (
            "population-average random score (a control: draws, not perturb-val)"
            if control
            else "population-average perturbation score (acc after - acc before, %)"
        )
        + ("\noutlined: the two operations the coarse selection kept" if kept else ""),
        fontsize=9,
    )
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def model_multiples(models: list[dict], prims, *, control: bool = False) -> Figure:
    """Each population model's valuation matrix, its initial operations outlined."""
    n = len(models)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.1 * cols + 0.8, 3.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    matrices = [
        np.array([row if row is not None else [np.nan] * len(prims) for row in m["matrix"]], dtype=float)
        for m in models
    ]
    norm = _centred_norm(np.concatenate([m.ravel() for m in matrices]))
    image = None
    for i, (ax, record, matrix) in enumerate(zip(axes, models, matrices)):
        image = _matrix_axes(ax, matrix, prims, norm, annotate=False, labels=True)
        for e, ops in enumerate(record["initial_switches"]):
            for op in ops:
                _box(ax, e, prims.index(op), "black", 1.5)
        done = sum(row is not None for row in record["matrix"])
        ax.set_title(f"model {record.get('model', i)} ({done}/{len(matrix)} edges)", fontsize=9)
        ax.tick_params(labelsize=6)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(
        (
            "random scores (a control) of every population model"
            if control
            else "valuation matrix of every population model"
        )
        + "; outlined: its initial operations",
        fontsize=10,
    )
    fig.colorbar(image, ax=list(axes[:n]), shrink=0.6)
    return fig


def score_bars(panels: list[dict], title: str, cols: int) -> Figure:
    """Small multiples of candidate scores: each panel has title, labels, scores, kept (labels)."""
    n = len(panels)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.9 * cols, 2.4 * rows))
    fig.subplots_adjust(hspace=0.65, wspace=0.35, top=1 - 0.35 / rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels):
        labels, scores = panel["labels"], panel["scores"]
        colors = [KEPT if label in panel["kept"] else OTHER for label in labels]
        bars = ax.bar(range(len(labels)), scores, color=colors, edgecolor="#333333", linewidth=0.5)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)  # a zero score has no visible bar
        ax.axhline(0, color="#333333", linewidth=0.6)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=7, rotation=30 if len(labels) > 3 else 0)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(panel["title"], fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return fig


def training_curves(stages: list[dict], val: Optional[dict[str, float]] = None) -> Figure:
    """Loss and top-1 of every training epoch in the order trained (the mean over ranks of
    data-parallel stages), one line per phase-1 model and one for phases 2-4; stages alternate
    shading, labelled by their tag. `val`: validation top-1 measured after a stage (its tag),
    drawn at the stage's last epoch."""
    by_stage: dict[str, list[dict]] = {}
    for r in stages:
        by_stage.setdefault(r["tag"], []).append(r)
    fig = Figure(figsize=(12, 5.2))
    ax_loss, ax_top1 = fig.subplots(2, 1, sharex=True)
    x, ticks = 0, []
    lines: dict[str, list] = {}  # a line's key -> [(x, loss, top1)]
    val_points = []
    for i, (tag, records) in enumerate(by_stage.items()):
        epochs = sorted({r["epoch"] for r in records})
        for j, ep in enumerate(epochs):
            at = [r for r in records if r["epoch"] == ep]
            key = tag.split(" ")[0] if tag.startswith("model") else "phases 2-4"
            lines.setdefault(key, []).append(
                (x + j, np.mean([r["loss"] for r in at]), np.mean([r["top1"] for r in at]))
            )
        if val and tag in val:
            val_points.append((x + len(epochs) - 1, val[tag]))
        if i % 2:
            for ax in (ax_loss, ax_top1):
                ax.axvspan(x - 0.5, x + len(epochs) - 0.5, color="#f0f0f0", zorder=0)
        ticks.append((x + (len(epochs) - 1) / 2, tag))
        x += len(epochs)
    for key, points in lines.items():
        xs, loss, top1 = zip(*points)
        color = "#1f77b4" if key.startswith("model") else "#ff7f0e"
        ax_loss.plot(xs, loss, marker="o", markersize=2.5, linewidth=1, color=color)
        ax_top1.plot(
            xs,
            top1,
            marker="o",
            markersize=2.5,
            linewidth=1,
            color=color,
            label="train, phases 2-4" if key == "phases 2-4" else None,
        )
    if val_points:
        xs, ys = zip(*val_points)
        ax_top1.plot(
            xs,
            ys,
            marker="s",
            markersize=4,
            linewidth=1.2,
            color="#2ca02c",
            label="validation (acc_before of the next decision)",
        )
    if val_points or "phases 2-4" in lines:
        ax_top1.legend(fontsize=7, loc="upper left")
    ax_loss.set_ylabel("train loss")
    ax_top1.set_ylabel("top-1 (%)")
    ax_top1.set_xlabel("training epochs in order (blue: phase 1 population models, orange: phases 2-4)")
    step = max(1, len(ticks) // 40)  # a readable number of stage labels
    ax_top1.set_xticks([t for t, _ in ticks[::step]])
    ax_top1.set_xticklabels([tag for _, tag in ticks[::step]], rotation=90, fontsize=6)
    return fig


def val_acc_curve(names: list[str], accs: list[float]) -> Figure:
    fig = Figure(figsize=(9, 3.2))
    ax = fig.subplots()
    ax.plot(range(len(accs)), accs, marker="o", color="#2ca02c")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, fontsize=7)
    ax.set_ylabel("validation top-1 (%)")
    ax.set_title("accuracy of the search network before each decision (acc_before)", fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def time_bars(phases: dict[str, float], decisions: list[tuple[str, float]]) -> Figure:
    """Wall time per phase, and the seconds of every decision."""
    panels = 2 if decisions else 1
    fig = Figure(figsize=(12, 3.4))
    fig.subplots_adjust(wspace=0.25)
    axes = np.atleast_1d(fig.subplots(1, panels, width_ratios=[1, 4][:panels]))
    ax = axes[0]
    ax.bar(list(phases), [v / 60 for v in phases.values()], color="#8c6d31")
    ax.set_ylabel("minutes")
    ax.set_title("wall time per phase", fontsize=9)
    if decisions:
        ax = axes[1]
        ax.bar(range(len(decisions)), [s for _, s in decisions], color="#bd9e39")
        ax.set_xticks(range(len(decisions)))
        ax.set_xticklabels([n for n, _ in decisions], rotation=60, fontsize=7)
        ax.set_ylabel("seconds")
        ax.set_title("time of every decision (perturb-val and the training after it)", fontsize=9)
    return fig


PHASE_LABELS = {"phase1": "phase 1", "phases2_4": "phases 2-4"}


def phase_label(key: str) -> str:
    """summary.json's step keys as the text says them ("phases2_4" -> "phases 2-4")."""
    return PHASE_LABELS.get(key, key.replace("_", " "))


def per_rank_bars(steps: dict[str, list], memory: Optional[list]) -> Figure:
    """Training steps per rank per phase (an idle rank shows as a missing bar), and peak memory per rank."""
    panels = [k for k, v in steps.items() if v] + (["memory"] if memory else [])
    fig = Figure(figsize=(3.6 * len(panels), 3.0))
    fig.subplots_adjust(wspace=0.35)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, key in zip(axes, panels):
        values = memory if key == "memory" else steps[key]
        ax.bar(range(len(values)), values, color="#6b6ecf" if key != "memory" else "#9c9ede")
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels([f"rank {r}" for r in range(len(values))], fontsize=7)
        ax.set_title(
            "peak memory per rank (MB)" if key == "memory" else f"training steps per rank, {phase_label(key)}",
            fontsize=9,
        )
    return fig


def frequency_heatmap(freq: np.ndarray, prims, runs: int) -> Figure:
    fig = Figure(figsize=(1.0 + 0.85 * len(prims), 6.2))
    ax = fig.subplots()
    image = ax.imshow(freq, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(prims)))
    ax.set_xticklabels([short_name(op) for op in prims], fontsize=8)
    ax.set_yticks(range(freq.shape[0]))
    ax.set_yticklabels([f"e{e}" for e in range(freq.shape[0])], fontsize=8)
    for (e, o), v in np.ndenumerate(freq):
        if v > 0:
            ax.text(o, e, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
    ax.set_title(f"share of the {runs} final cells with each operation on each edge", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def spread(series: dict[str, list[float]]) -> Figure:
    """Each metric's values across seeds as points over a box."""
    fig = Figure(figsize=(3.2 * len(series), 3.4))
    fig.subplots_adjust(wspace=0.4)
    axes = np.atleast_1d(fig.subplots(1, len(series)))
    for ax, (label, values) in zip(axes, series.items()):
        ax.boxplot(values, widths=0.5)
        jitter = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else [0.0]
        ax.scatter(1 + np.asarray(jitter), values, color="#d62728", zorder=3, s=18)
        ax.set_xticks([])
        ax.set_title(f"{label} (n={len(values)})", fontsize=9)
        ax.set_ylabel("%")
    return fig


def group_points(panels: dict[str, dict[str, list[float]]]) -> Figure:
    """Per panel (a metric), each group's values as points (one per seed) with the median marked
    by a black bar; a group without values of that metric is left empty."""
    names = list(dict.fromkeys(name for groups in panels.values() for name in groups))
    fig = Figure(figsize=(max(4.0, 1.6 * len(names)) * len(panels), 4.2))
    fig.subplots_adjust(wspace=0.3)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (metric, groups) in zip(axes, panels.items()):
        for x, name in enumerate(names):
            values = groups.get(name, [])
            if not values:
                continue
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(x + jitter, values, color="#d62728", zorder=3, s=22)
            median = float(np.median(values))
            ax.hlines(median, x - 0.3, x + 0.3, color="black", linewidth=2, zorder=2)
            ax.annotate(
                f"median {median:.1f}" + ("" if len(values) > 1 else " (1 seed)"),
                (x, median),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                fontsize=7,
            )
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([name.replace(", ", ",\n").replace(" (", "\n(") for name in names], fontsize=7)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.margins(y=0.15)  # room for the median labels above the highest points
        ax.set_title(metric, fontsize=9)
        ax.set_ylabel("%")
        ax.grid(axis="y", alpha=0.3)
    return fig


def _mark(ax, best_epoch: Optional[int], resumes: Sequence[int]) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
    if best_epoch:
        ax.axvline(best_epoch, color="#d62728", linewidth=0.8, linestyle=":")
    for r in resumes:
        ax.axvline(r + 0.5, color="#7f7f7f", linewidth=0.9, linestyle="--")


def eval_curves(epochs: list[dict], best_epoch: Optional[int], resumes: Sequence[int]) -> Figure:
    """An evaluation's train and validation loss and top-1 per epoch; dotted red: the best epoch,
    dashed grey: where a resumed run continued."""
    xs = [r["epoch"] for r in epochs]
    fig = Figure(figsize=(12, 5.6))
    ax_loss, ax_top1 = fig.subplots(2, 1, sharex=True)
    ax_loss.plot(xs, [r["train_loss"] for r in epochs], color="#1f77b4", marker="o", markersize=2, label="train")
    ax_loss.plot(xs, [r["val_loss"] for r in epochs], color="#2ca02c", marker="o", markersize=2, label="validation")
    ax_top1.plot(xs, [r["train_top1"] for r in epochs], color="#1f77b4", marker="o", markersize=2, label="train")
    ax_top1.plot(xs, [r["val_top1"] for r in epochs], color="#2ca02c", marker="o", markersize=2, label="validation")
    ax_top1.plot(xs, [r["val_top5"] for r in epochs], color="#98df8a", linewidth=0.9, label="validation top-5")
    for ax in (ax_loss, ax_top1):
        _mark(ax, best_epoch, resumes)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_loss.set_ylabel("loss")
    ax_top1.set_ylabel("accuracy (%)")
    ax_top1.set_xlabel(
        "epoch"
        + (f" (best: {best_epoch}, dotted)" if best_epoch else "")
        + ("; dashed: resumed here" if resumes else "")
    )
    return fig


def eval_schedules(epochs: list[dict], resumes: Sequence[int]) -> Figure:
    """The learning rate and the drop-path probability each epoch trained with."""
    xs = [r["epoch"] for r in epochs]
    fig = Figure(figsize=(12, 3.2))
    fig.subplots_adjust(wspace=0.25)
    ax_lr, ax_dp = fig.subplots(1, 2)
    ax_lr.plot(xs, [r["lr"] for r in epochs], color="#8c564b", marker="o", markersize=2)
    ax_lr.set_title("learning rate", fontsize=9)
    ax_dp.plot(xs, [r["drop_path_prob"] for r in epochs], color="#9467bd", marker="o", markersize=2)
    ax_dp.set_title("drop-path probability", fontsize=9)
    for ax in (ax_lr, ax_dp):
        _mark(ax, None, resumes)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return fig


def epoch_times(epochs: list[dict], resumes: Sequence[int]) -> Figure:
    """Seconds of every epoch (training and validation)."""
    fig = Figure(figsize=(12, 2.8))
    ax = fig.subplots()
    ax.bar([r["epoch"] for r in epochs], [r["seconds"] for r in epochs], color="#bd9e39")
    _mark(ax, None, resumes)
    ax.set_xlabel("epoch")
    ax.set_ylabel("seconds")
    ax.set_title("time of every epoch (training and validation)", fontsize=9)
    return fig
