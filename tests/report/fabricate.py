"""Fabricated search run directories, in the layout the searches write (decisions made by the
real selection rules on made-up scores), finished or cut off after some decisions."""

import json
import random

import numpy as np

from nas.genotype import genotype_from_switches, genotype_to_dict, save_genotype
from nas.search.decisions import plan
from nas.search.selection import coarse_select, fine_select, topology_select
from nas.space.primitives import NUM_EDGES, PRIMITIVES, edges_of_node
from nas.space.switches import random_switches, to_lists

NPOP = 2


def fabricate(run, *, seed=3, decisions=18, finished=True, stages=True, world_size=2):
    """A run of the evolutionary search; `decisions` of the 18 done (all of them when finished)."""
    rng = random.Random(seed)
    prims = list(PRIMITIVES)
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        f"method: evolutionary\nseed: {seed}\nnpop: {NPOP}\nstage_epochs: 2\nextra_ops: false\n"
    )
    (run / "valuation").mkdir()
    matrices = []
    for m in range(NPOP):
        matrix = [[round(rng.uniform(-4, 3), 4) for _ in prims] for _ in range(NUM_EDGES)]
        matrices.append(matrix)
        record = {
            "model": m,
            "primitives": prims,
            "initial_switches": to_lists(random_switches(1, rng, prims)),
            "matrix": matrix,
            "steps": 140 + m,
            "seconds": 61.5 + m,
        }
        (run / "valuation" / f"model{m}.json").write_text(json.dumps(record))
    average = np.round(np.mean(np.array(matrices), axis=0), 4)
    (run / "valuation" / "average.json").write_text(
        json.dumps({"primitives": prims, "npop": NPOP, "matrix": average.tolist()})
    )
    history, switches, lines = [], None, []
    for d in plan("coarse", seed)[:decisions]:
        entry = {"decision": d.number, "decisions": 18, "name": d.name}
        if d.kind == "start":
            switches = coarse_select(average, prims)
        elif d.kind == "fine":
            entry["acc_before"] = round(rng.uniform(20, 40), 4)
            entry["scores"] = {op: round(rng.uniform(-5, 2), 4) for op in switches[d.target]}
            switches = fine_select(switches, d.target, entry["scores"], prims)
            entry["selected"] = switches[d.target][0]
        else:
            entry["acc_before"] = round(rng.uniform(30, 45), 4)
            scores = {e: round(rng.uniform(-6, 1), 4) for e in edges_of_node(d.target)}
            switches = topology_select(switches, d.target, scores, prims)
            entry["scores"] = {str(e): s for e, s in scores.items()}
            entry["kept_edges"] = [e for e in edges_of_node(d.target) if switches[e]]
        entry["switches"] = to_lists(switches)
        entry["seconds"] = round(rng.uniform(5, 20), 2)
        history.append(entry)
        for rank in range(world_size):
            lines += [
                {
                    "tag": d.name,
                    "epoch": ep,
                    "epochs": 2,
                    "rank": rank,
                    "lr": 0.05,
                    "loss": round(rng.uniform(1, 2), 4),
                    "top1": round(rng.uniform(20, 50), 2),
                }
                for ep in (1, 2)
            ]
    (run / "decisions.json").write_text(json.dumps(history, indent=2))
    if stages:
        (run / "stages.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if finished:
        g = genotype_from_switches(switches)
        save_genotype(run / "genotype.json", g)
        summary = {
            "status": "finished",
            "method": "evolutionary",
            "seed": seed,
            "world_size": world_size,
            "device": "cuda:0",
            "gpu_model": "NVIDIA H100",
            "wall_time_s": 1234.5,
            "time_phase1_s": 400.25,
            "time_phases2_4_s": 830.75,
            "gpu_hours": 0.6858,
            "peak_memory_mb": [2048.5, 2050.0][:world_size],
            "steps": {"phase1": [281, 0][:world_size], "phases2_4": [950, 950][:world_size]},
            "val_acc": history[-1]["acc_before"],
            "val_protocol": "holdout",
            "genotype": genotype_to_dict(g),
        }
        (run / "summary.json").write_text(json.dumps(summary, indent=2))
        state = {"status": "finished", "method": "evolutionary", "phase": "done"}
    else:
        state = {
            "status": "running",
            "method": "evolutionary",
            "phase": "fine_edge8",
            "decision": decisions,
            "decisions": 18,
        }
    (run / "state.json").write_text(json.dumps(state))
    return run
