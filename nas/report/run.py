"""The report of one search run: every section built from what the run directory holds, each
saying what is not recorded (an unfinished run's report stops at its last decision)."""

from __future__ import annotations

import yaml

from nas.core.errors import UserError
from nas.core.rundir import STAGES, STATE, SUMMARY
from nas.genotype import distinct_cells, format_json, format_literal
from nas.report import figures as F
from nas.report.load import RunData, is_num
from nas.report.page import config_table, details, esc, img, missing, num, numeric, page, table
from nas.search.decisions import DECISION_COUNT
from nas.space.primitives import FINE_EDGE_ORDER, NUM_EDGES, NUM_NODES, edges_of_node, short_name

SECTIONS = (
    ("summary", "Summary"),
    ("cell", "Final cell"),
    ("phase1", "Phase 1: population valuation"),
    ("coarse", "Coarse selection"),
    ("fine", "Fine selection"),
    ("topology", "Topology selection"),
    ("narrowing", "The cell as it narrowed"),
    ("training", "Training"),
    ("time", "Time and resources"),
    ("config", "Configuration"),
)


CONTROL_NOTE = (
    "a control run (--scores random): every score on this page is a random draw from the run's seed, not "
    "perturb-val's measurement (the log shows both), so each decision is a random choice among the same "
    "candidates; the networks, training and cost are the method's"
)


def is_control(data: RunData) -> bool:
    return data.config.get("scores", data.info.summary.get("scores")) == "random"


def _control(data: RunData) -> str:
    return f'<p class="control"><b>{esc(CONTROL_NOTE)}</b></p>' if is_control(data) else ""


def _score_word(data: RunData) -> str:
    return "random score (control)" if is_control(data) else "score"


def run_report(data: RunData, renderer: F.Renderer) -> str:
    builders = {
        "summary": _summary,
        "cell": _cell,
        "phase1": _phase1,
        "coarse": _coarse,
        "fine": _fine,
        "topology": _topology,
        "narrowing": _narrowing,
        "training": _training,
        "time": _time,
        "config": _config,
    }
    with F.literal_text():
        sections = [(anchor, title, builders[anchor](data, renderer)) for anchor, title in SECTIONS]
    return page(f"search report: {data.path.name}", header(data), sections)


def header(data: RunData) -> str:
    status = data.info.status
    last = data.decisions[-1]["name"] if data.decisions else None
    if status == "finished":
        text = "finished"
    elif status == "unfinished":
        phase = (data.state or {}).get("phase", "?")
        text = f"unfinished (now in {phase}): this report covers the run up to " + (
            f"its last decision, decision {len(data.decisions)}/{DECISION_COUNT} ({last})"
            if last
            else "phase 1 (no decision done yet)"
        )
    else:
        text = "broken: " + (data.info.reason or "unreadable files")
    problems = "".join(f"<li>{esc(p)}</li>" for p in data.missing)
    return (
        f"<h1>Search report: {esc(data.path.name)}</h1>\n<p><code>{esc(data.path)}</code></p>\n"
        f'<div class="banner {status}" id="status">status: {esc(text)}</div>\n'
        + (f'<div class="banner control" id="control">{esc(CONTROL_NOTE)}</div>\n' if is_control(data) else "")
        + (f'<div class="missing" id="problems">missing or damaged:<ul>{problems}</ul></div>' if problems else "")
    )


def _summary(data: RunData, renderer) -> str:
    s = data.info.summary
    rows = [
        ("method", data.method or "-"),
        ("scores", "random: a control, not the method" if is_control(data) else "perturb-val"),
        ("data set", data.info.dataset or "-"),
        ("seed", data.info.seed if data.info.seed is not None else "-"),
        ("status", data.info.status),
        ("decisions done", f"{len(data.decisions)}/{DECISION_COUNT}"),
        ("val_acc (%)", numeric(data.info.val_acc, 4)),
        ("val_protocol", s.get("val_protocol", "-")),
        ("wall time (s)", numeric(data.info.wall_time_s)),
        ("GPU-hours", numeric(data.info.gpu_hours, 4)),
        ("world size", s.get("world_size", "-")),
        ("device", s.get("device", "-")),
        ("GPU model", s.get("gpu_model") or "-"),
    ]
    note = (
        "" if s else missing(f"no {SUMMARY} (written when the run finishes): the figures use what the run wrote so far")
    )
    return table(None, rows, "summary") + note


def _cell(data: RunData, renderer) -> str:
    g = data.info.genotype
    if g is None:
        return missing("no genotype yet: the final cell is written when the run finishes")
    cells = distinct_cells(g)
    parts = [img(renderer.add_cell(kind, cell, concat), f"{kind} cell", "fig cell") for kind, cell, concat in cells]
    parts.append("<p>the same cell serves as normal and reduction cell</p>" if len(cells) == 1 else "")
    parts.append(f'<h3>DARTS literal</h3><pre id="literal">{esc(format_literal(g))}</pre>')
    parts.append(f'<h3>JSON</h3><pre id="json">{esc(format_json(g))}</pre>')
    return "\n".join(parts)


def _coarse_kept(data: RunData):
    first = data.decisions[0] if data.decisions else None
    return first["switches"] if first and first["name"] == "coarse" else None


def _phase1(data: RunData, renderer) -> str:
    if data.method == "supernet":
        return missing("the supernet search has no phase 1: it trains the supernet (decision 'pretrain')")
    prims = data.primitives
    parts = [_control(data)]
    if data.average is not None:
        fig = renderer.add(
            "phase1_average", F.average_heatmap(data.average, prims, _coarse_kept(data), control=is_control(data))
        )
        parts.append(img(fig, "population-average perturbation scores"))
        rows = [[f"edge {e}"] + [numeric(v, 4) for v in row] for e, row in enumerate(data.average)]
        parts.append(details("the average matrix as numbers", table(["edge"] + list(prims), rows, "average")))
    else:
        parts.append(missing("no population average yet (valuation/average.json is written when phase 1 ends)"))
    if data.models:
        fig = renderer.add("phase1_models", F.model_multiples(data.models, prims, control=is_control(data)))
        parts.append(img(fig, "valuation matrix of every population model"))
        rows = [
            [
                f"model {m.get('model', i)}",
                sum(r is not None for r in m["matrix"]),
                numeric(m.get("steps")),
                numeric(m.get("seconds") if is_num(m.get("seconds")) else None, 1),
            ]
            for i, m in enumerate(data.models)
        ]
        parts.append(table(("model", "edges valued", "training steps", "seconds"), rows, "models"))
    else:
        parts.append(missing("no population model valued yet (valuation/model<m>.json)"))
    return "\n".join(parts)


def _coarse(data: RunData, renderer) -> str:
    if not data.decisions:
        return missing("not done yet")
    first = data.decisions[0]
    if first["name"] != "coarse":
        return missing(f"this method starts with '{first['name']}' instead: every edge keeps every operation")
    rows = [[f"edge {e}", ", ".join(ops) or "-"] for e, ops in enumerate(first["switches"])]
    return (
        _control(data) + f"<p>each edge keeps the two operations with the lowest average {_score_word(data)}</p>"
    ) + table(("edge", "kept"), rows, "coarse")


def _by_prefix(data: RunData, prefix: str) -> list[dict]:
    return [d for d in data.decisions if d["name"].startswith(prefix)]


def _fine(data: RunData, renderer) -> str:
    decisions = _by_prefix(data, "fine_edge")
    if not decisions:
        return missing("not done yet")
    panels, rows = [], []
    for d in decisions:
        edge = d["name"].removeprefix("fine_edge")
        scores, kept, acc = d.get("scores") or {}, d.get("selected"), d.get("acc_before")
        acc_text = f"acc_before {acc:.2f}%" if is_num(acc) else "acc_before not recorded"
        if scores:
            panels.append(
                {
                    "title": f"edge {edge}: {acc_text}",
                    "labels": [short_name(op) for op in scores],
                    "scores": list(scores.values()),
                    "kept": {short_name(kept)} if kept else set(),
                }
            )
        cands = " ".join(f"{op} {v:.4f}" for op, v in scores.items()) or "one operation left: no perturb-val"
        rows.append([d["name"], cands, (esc(kept or "-"), "kept"), numeric(acc if is_num(acc) else None, 4)])
    parts = [_control(data)]
    if panels:
        fig = renderer.add(
            "fine_selection",
            F.score_bars(
                panels,
                f"fine selection in decision order: the {_score_word(data)} of removing each candidate; "
                "red: kept (lowest)",
                cols=5,
            ),
        )
        parts.append(img(fig, "fine selection scores"))
    scores_head = "candidates and random scores (control)" if is_control(data) else "candidates and scores"
    parts.append(table(("decision", scores_head, "kept", "acc_before (%)"), rows, "fine"))
    left = len(FINE_EDGE_ORDER) - len(decisions)
    if left:
        parts.append(missing(f"{left} fine decision(s) not done yet"))
    return "\n".join(parts)


def _topology(data: RunData, renderer) -> str:
    decisions = _by_prefix(data, "topology_node")
    parts = [
        _control(data)
        + "<p>node 0 keeps both of its edges (0 and 1); nodes 1-3 keep the two incoming edges "
        + ("with the lowest random scores</p>" if is_control(data) else "whose removal hurts most</p>")
    ]
    if not decisions:
        return parts[0] + missing("not done yet")
    panels, rows = [], []
    for d in decisions:
        node = d["name"].removeprefix("topology_node")
        scores, kept, acc = d.get("scores") or {}, [str(e) for e in d.get("kept_edges") or []], d.get("acc_before")
        acc_text = f"acc_before {acc:.2f}%" if is_num(acc) else "acc_before not recorded"
        panels.append(
            {
                "title": f"node {node}: {acc_text}",
                "labels": [f"e{e}" for e in scores],
                "scores": list(scores.values()),
                "kept": {f"e{e}" for e in kept},
            }
        )
        rows.append(
            [
                d["name"],
                " ".join(f"edge {e} {v:.4f}" for e, v in scores.items()),
                (esc(", ".join(kept) or "-"), "kept"),
                numeric(acc if is_num(acc) else None, 4),
            ]
        )
    fig = renderer.add(
        "topology_selection",
        F.score_bars(
            panels,
            f"topology selection: the {_score_word(data)} of removing each incoming edge; red: the two kept",
            cols=3,
        ),
    )
    parts += [
        img(fig, "topology selection scores"),
        table(
            ("decision", "edges and random scores (control)" if is_control(data) else "edges and scores", "kept edges")
            + ("acc_before (%)",),
            rows,
            "topology",
        ),
    ]
    return "\n".join(parts)


def _narrowing(data: RunData, renderer) -> str:
    if not data.decisions:
        return missing("no decision done yet")
    header = ["after"] + [f"e{e}" for e in range(NUM_EDGES)]
    rows, previous = [], None
    for d in data.decisions:
        row = [d["name"]]
        for e, ops in enumerate(d["switches"]):
            text = " ".join(short_name(op) for op in ops) or "&mdash;"
            css = "changed" if previous is not None and ops != previous[e] else ("empty" if not ops else "")
            row.append((text if not ops else esc(text), css))
        rows.append(row)
        previous = d["switches"]
    nodes = " | ".join(f"node {n}: e{edges_of_node(n)[0]}-e{edges_of_node(n)[-1]}" for n in range(NUM_NODES))
    return (
        f"<p>the operations of every edge after each decision; highlighted: what the decision changed "
        f"({esc(nodes)})</p>" + table(header, rows, "grid")
    )


def _training(data: RunData, renderer) -> str:
    parts = []
    if data.stages:
        source = f"from {data.stages_source}" + (
            "" if data.stages_source == STAGES else f" (this run predates {STAGES})"
        )
        # acc_before of a decision measures the network the stage before it trained (tagged with the previous decision)
        val = {
            prev["name"]: d["acc_before"]
            for prev, d in zip(data.decisions, data.decisions[1:])
            if is_num(d.get("acc_before"))
        }
        parts.append(img(renderer.add("training", F.training_curves(data.stages, val)), "training loss and top-1"))
        parts.append(
            f"<p>{esc(source)}; {len({r['tag'] for r in data.stages})} stages, {len(data.stages)} epoch records</p>"
        )
    else:
        parts.append(missing(f"training loss and top-1 not recorded (no {STAGES}, no epoch lines in the logs)"))
    measured = [(d["name"], d["acc_before"]) for d in data.decisions if is_num(d.get("acc_before"))]
    if measured:
        fig = renderer.add("val_acc", F.val_acc_curve([n for n, _ in measured], [a for _, a in measured]))
        parts.append(img(fig, "validation accuracy over the decisions"))
        parts.append(
            details(
                "acc_before of every decision",
                table(("decision", "acc_before (%)"), [[n, numeric(a, 4)] for n, a in measured], "val"),
            )
        )
    else:
        parts.append(
            missing("validation accuracy over the decisions not recorded yet (acc_before of the fine decisions)")
        )
    return "\n".join(parts)


def _time(data: RunData, renderer) -> str:
    s = data.info.summary
    parts = []
    phase1 = s.get("time_phase1_s")
    if not is_num(phase1) and data.models:
        phase1 = sum(m["seconds"] for m in data.models if is_num(m.get("seconds")))  # an unfinished run: so far
    phases2_4 = s.get("time_phases2_4_s")
    if not is_num(phases2_4) and data.decisions:
        phases2_4 = sum(d["seconds"] for d in data.decisions if is_num(d.get("seconds")))
    phases = {name: v for name, v in (("phase 1", phase1), ("phases 2-4", phases2_4)) if is_num(v)}
    decisions = [(d["name"], d["seconds"]) for d in data.decisions if is_num(d.get("seconds"))]
    if phases:
        parts.append(img(renderer.add("time", F.time_bars(phases, decisions)), "wall time per phase and per decision"))
    rows = [
        ("wall time (s)", numeric(data.info.wall_time_s)),
        ("phase 1 (s)", numeric(phase1 if is_num(phase1) else None)),
        ("phases 2-4 (s)", numeric(phases2_4 if is_num(phases2_4) else None)),
        ("GPU-hours", numeric(data.info.gpu_hours, 4)),
    ]
    steps = s.get("steps") if isinstance(s.get("steps"), dict) else {}
    steps = {k: v for k, v in steps.items() if isinstance(v, list) and v and all(map(is_num, v))}
    memory = s.get("peak_memory_mb")
    memory = memory if isinstance(memory, list) and memory and all(map(is_num, memory)) else None
    if steps or memory:
        ranks = max([len(v) for v in steps.values()] + [len(memory or [])])
        if ranks > 1:  # one rank: its numbers are in the table, a chart of one bar each says nothing more
            parts.append(img(renderer.add("ranks", F.per_rank_bars(steps, memory)), "steps and peak memory per rank"))
        for key, values in steps.items():
            rows.append((f"steps {F.phase_label(key)} per rank", esc(" ".join(str(v) for v in values))))
        if memory:
            rows.append(("peak memory per rank (MB)", esc(" ".join(num(v, 1) for v in memory))))
        per_process = s.get("peak_memory_mb_per_process")
        if isinstance(per_process, list) and any(isinstance(p, list) and len(p) > 1 for p in per_process):
            rows.append(
                (
                    "peak memory per process (MB)",
                    esc(
                        "; ".join(
                            f"rank {r}: " + " ".join(num(v, 1) if is_num(v) else "?" for v in p)
                            for r, p in enumerate(per_process)
                            if isinstance(p, list)
                        )
                    ),
                )
            )
    else:
        parts.append(missing(f"steps and peak memory per rank are recorded in {SUMMARY} when the run finishes"))
    if not phases:
        parts.append(missing("no time recorded yet"))
    return "\n".join(parts) + table(None, rows, "time")


def _config(data: RunData, renderer) -> str:
    state = f"<h3>{STATE}</h3><pre>{esc(yaml.safe_dump(data.state, sort_keys=False))}</pre>" if data.state else ""
    if not data.config:
        return missing("no readable config.yaml") + state
    return config_table(data.config, _search_defaults(data.method)) + state


def _search_defaults(method) -> dict | None:
    """The defaults of the method's configuration; None for a method this toolkit does not know."""
    from nas.core.config import to_dict
    from nas.search.registry import get_method

    try:
        return to_dict(get_method(method).config()) if method else None
    except UserError:
        return None
