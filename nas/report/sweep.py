"""The report of a sweep: the collector's table, how often each operation ends on each edge
across seeds, the spread of val_acc (and of NAS-Bench-301), and a section per run that links
to the run's own report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote

import numpy as np

from nas.analysis.runs import RunInfo, search_group
from nas.analysis.table import EVAL_HEADERS, HEADERS, Collection, Group
from nas.report import figures as F
from nas.report.page import esc, img, missing, num, numeric, page, table
from nas.space.primitives import NUM_EDGES, edge_index, primitives

SECTIONS = (
    ("table", "Searches"),
    ("groups", "Method and controls side by side"),
    ("evaluations", "Evaluations"),
    ("frequency", "Operations of the final cells"),
    ("spread", "Spread across seeds"),
    ("runs", "Each run"),
)


def operation_frequency(genotypes: list, prims) -> np.ndarray:
    """Share of the normal cells (a search's one cell) holding each operation on each edge."""
    freq = np.zeros((NUM_EDGES, len(prims)))
    for g in genotypes:
        for i, (op, source) in enumerate(g.normal):
            freq[edge_index(i // 2, source), prims.index(op)] += 1
    return freq / max(len(genotypes), 1)


def sweep_report(
    collection: Collection, renderer: F.Renderer, failed: dict[Path, str], link: Callable[[Path], Optional[str]]
) -> str:
    """`link(run_dir)`: the relative address of the run's own report, None when it was not
    written (`failed` says why)."""
    runs = collection.runs
    finished = [r for r in collection.searches if r.status == "finished" and r.genotype is not None]
    with F.literal_text():
        sections = [
            ("table", "Searches", _table(collection, link)),
            ("groups", "Method and controls side by side", _groups(collection.groups(), renderer)),
            ("evaluations", "Evaluations", _eval_table(collection, link)),
            ("frequency", "Operations of the final cells", _frequency(finished, renderer)),
            ("spread", "Spread across seeds", _spread(collection, finished, renderer)),
            ("runs", "Each run", _runs(collection, renderer, failed, link)),
        ]
    counts = {s: sum(r.status == s for r in runs) for s in ("finished", "unfinished", "broken")}
    header = (
        f"<h1>Sweep report: {esc(collection.root.name)}</h1>\n<p><code>{esc(collection.root)}</code></p>\n"
        f'<div class="banner {"finished" if counts["finished"] == len(runs) else "unfinished"}" id="status">'
        f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "</div>"
    )
    return page(f"sweep report: {collection.root.name}", header, sections)


def _run_link(link, run: RunInfo, name: str) -> tuple[str, str]:
    target = link(run.path)
    return (f'<a href="{esc(target)}">{esc(name)}</a>' if target else esc(name)), ""


def _eval_table(collection: Collection, link) -> str:
    if not collection.evaluations:
        return missing("no evaluation run under this root")
    rows = []
    for run, row in zip(collection.evaluations, collection.eval_rows()):
        rows.append(
            [
                _run_link(link, run, row["run"]),
                row["seed"] if row["seed"] is not None else "-",
                row["arch"] or "-",
                row["dataset"] or "-",
                numeric(row["best_top1"]),
                numeric(row["best_epoch"]),
                numeric(row["final_top1"]),
                numeric(row["final_top5"]),
                (esc(row["epochs"]), "num"),
                numeric(row["params_m"], 3),
                numeric(row["macs_m"]),
                (esc(_clock(row["wall_time"])), "num"),
                numeric(row["gpu_hours"]),
                row["status"],
            ]
        )
    return table(EVAL_HEADERS, rows, "evaluations")


def _table(collection: Collection, link) -> str:
    if not collection.searches:
        return missing("no search run under this root")
    rows = []
    for run, row in zip(collection.searches, collection.rows()):
        rows.append(
            [
                _run_link(link, run, row["run"]),
                row["seed"] if row["seed"] is not None else "-",
                row["method"] or "-",
                numeric(row["val_acc"], 4),
                (f"<code>{esc(row['genotype'] or '-')}</code>", ""),
                numeric(row["params_m"]),
                (esc(_clock(row["wall_time"])), "num"),
                numeric(row["gpu_hours"]),
                row["status"],
                numeric(row["nb301"]),
            ]
        )
    return table(HEADERS, rows, "runs")


def _clock(seconds) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


METRICS = (("val_acc", "val_acc of the search (%)"), ("top1", "best top-1 of the cell's evaluation (%)"))


def _groups(groups: list[Group], renderer) -> str:
    """Each group's val_acc over its seeds and the best top-1 of their cells' evaluations, one
    point per seed (a random cell: per cell), medians marked; a group of one seed says so."""
    if not groups:
        return missing("no finished search or evaluated random cell yet")
    panels = {label: {g.name: g.values(metric) for g in groups} for metric, label in METRICS}
    panels = {label: groups_ for label, groups_ in panels.items() if any(groups_.values())}
    rows = []
    for g in groups:
        for metric, label in METRICS:
            values = g.values(metric)
            if not values:
                continue
            one = len(values) == 1
            rows.append(
                [
                    g.name + (" [control]" if g.control else ""),
                    label,
                    (f"{len(values)}" + (f" (one {g.unit} only: no spread)" if one else ""), "num"),
                    numeric(float(np.median(values))),
                    numeric(min(values)),
                    numeric(max(values)),
                    (esc(" ".join(f"{num(v)}" for v in values)), "num"),
                ]
            )
    points = "; ".join(f"{esc(g.name)}: " + ", ".join(esc(p.label) for p in g.points) for g in groups)
    note = (
        "<p>one point per seed (random cells: per cell); the black bar is the median. An evaluation counts "
        "for the search beside it (same directory) whose cell it trained, or for a sampled cell file "
        f"beside it. Points: {points}</p>"
    )
    return (
        img(renderer.add("groups", F.group_points(panels)), "method and controls side by side")
        + table(("group", "metric", "points", "median", "min", "max", "values"), rows, "groups")
        + note
    )


def _frequency(finished: list[RunInfo], renderer) -> str:
    if not finished:
        return missing("no finished run with a genotype yet")
    prims = primitives(extra_ops=any(op not in primitives() for r in finished for op, _ in r.genotype.normal))
    freq = operation_frequency([r.genotype for r in finished], prims)
    fig = renderer.add("operation_frequency", F.frequency_heatmap(freq, prims, len(finished)))
    rows = [[f"edge {e}"] + [numeric(v) for v in row] for e, row in enumerate(freq)]
    return img(fig, "operation frequency per edge") + table(["edge"] + list(prims), rows, "frequency")


def _spread(collection: Collection, finished: list[RunInfo], renderer) -> str:
    # one series per group (method, control) when there are several: the method and its control apart
    by_group: dict[str, list[RunInfo]] = {}
    for r in finished:
        by_group.setdefault(search_group(r), []).append(r)
    series = {}
    for name, runs in by_group.items():
        suffix = f" ({name})" if len(by_group) > 1 else ""
        series["val_acc" + suffix] = [r.val_acc for r in runs if r.val_acc is not None]
        if collection.nb301:
            series["NAS-Bench-301" + suffix] = [collection.nb301[r.path] for r in runs if r.path in collection.nb301]
    series = {k: v for k, v in series.items() if v}
    if not series:
        return missing("no finished run records val_acc yet")
    rows = [
        [
            label,
            len(v),
            numeric(float(np.mean(v)), 4),
            numeric(float(np.std(v)), 4),
            numeric(min(v), 4),
            numeric(max(v), 4),
        ]
        for label, v in series.items()
    ]
    note = "" if collection.nb301 else "<p>NAS-Bench-301: give --nb301-models DIR to add its predictions</p>"
    return (
        img(renderer.add("spread", F.spread(series)), "spread across seeds")
        + table(("metric (%)", "runs", "mean", "std", "min", "max"), rows, "spread")
        + note
    )


def _runs(collection: Collection, renderer, failed: dict[Path, str], link) -> str:
    parts = []
    for i, run in enumerate(collection.runs):
        name = collection.name(run)
        target = link(run.path)
        report = f'<a href="{esc(target)}">its report</a>' if target else esc(failed.get(run.path, "no report"))
        accuracy = (
            f"{search_group(run)}, val_acc {num(run.val_acc, 4)}"
            if run.kind == "search"
            else f"evaluation, best top-1 {num(run.best_top1)}"
        )
        facts = f"status {run.status}{f' ({run.reason})' if run.reason else ''}; seed {num(run.seed)}; {accuracy}"
        body = f'<h3 id="run-{i}">{esc(name)}</h3><p>{esc(facts)}; {report}</p>'
        if run.genotype is not None:
            g = run.genotype
            body += img(renderer.add_cell(f"run{i}_cell", g.normal, g.normal_concat), f"cell of {name}", "fig cell")
        parts.append(body)
    return "\n".join(parts)


def relative_link(out: Path, target: Path) -> str:
    """A relative address that a browser takes as a path, percent-encoded: a sub-directory named
    `javascript:...` must not become a link's scheme (an encoded ':' cannot)."""
    return quote(Path(os.path.relpath(target.resolve(), out.resolve().parent)).as_posix())
