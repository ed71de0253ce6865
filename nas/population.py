"""Phase 1 of the evolutionary search (SPEC §5.1): population valuation.

Each of `npop` discrete models starts with `op_cap` random operations per edge. For every
edge in turn, the model's edge is expanded to all operations, a fresh network is trained,
and perturb-val scores the edge's operations into that row of the model's valuation
matrix. Models are split over the ranks; every (model, edge) step is saved as it ends,
so a resumed run redoes at most one step per rank.
"""
from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING

import numpy as np

from . import distributed as D
from .errors import UserError
from .io import read_json, write_json
from .rundir import eta
from .seeding import derive_seed
from .space import NUM_EDGES
from .switches import random_switches, to_lists, with_edge

if TYPE_CHECKING:
    from .search import SearchRun

log = logging.getLogger("nas")


def models_of_rank(npop: int, rank: int, world: int) -> range:
    if npop < 1 or npop % world:
        raise UserError(f"--npop {npop} is not a positive multiple of the number of processes ({world})")
    per_rank = npop // world
    return range(rank * per_rank, (rank + 1) * per_rank)


def initial_switches(seed: int, model: int, op_cap: int, prims):
    return random_switches(op_cap, random.Random(derive_seed(seed, "initial-switches", model)), prims)


def value_population(run: "SearchRun", npop: int, op_cap: int) -> tuple[np.ndarray, float]:
    """The population's average valuation matrix (14 x ops), the same on every rank, and the
    phase's time (the slowest rank's, restarts included)."""
    cfg, prims = run.cfg, run.primitives
    steps = cfg.finetune_steps + cfg.finetune_extra[0]
    my_models = models_of_rank(npop, run.env.rank, run.env.world_size)
    total, done, t_start = len(my_models) * NUM_EDGES, 0, time.time()
    for model in my_models:
        path = run.run_dir / "valuation" / f"model{model}.json"
        initial = initial_switches(cfg.seed, model, op_cap, prims)
        record = read_json(path) if path.is_file() else {
            "model": model, "primitives": list(prims), "initial_switches": to_lists(initial),
            "matrix": [None] * NUM_EDGES, "steps": 0, "seconds": 0.0}
        run.steps["phase1"] += record["steps"]
        log.info("model %d: initial switches %s", model, record["initial_switches"])
        for edge in range(NUM_EDGES):
            if record["matrix"][edge] is not None:
                total -= 1
                continue  # done before a restart
            tic, steps_before = time.time(), run.steps["phase1"]
            switches = with_edge(initial, edge, prims, prims)  # this edge expanded, the others as initialised
            key = derive_seed(cfg.seed, "phase1", model, edge)
            net = run.build(switches, key)
            optimizer = run.train_stage(net, cfg.stage_epochs, cfg.scaled_lr / 2.5, key % 100_000,
                                        f"model{model} edge{edge}", data_parallel=False, counter="phase1")
            scores = run.perturb(net, optimizer, [(edge, op) for op in prims], steps, ("phase1", model, edge),
                                 split=False, counter="phase1").scores
            record["matrix"][edge] = [round(scores[(edge, op)], 4) for op in prims]
            record["steps"] += run.steps["phase1"] - steps_before
            record["seconds"] = round(record["seconds"] + time.time() - tic, 2)
            write_json(path, record)
            for op in prims:
                run.tb.add_scalar(f"valuation/model{model}/edge{edge}/{op}", scores[(edge, op)], edge)
            done += 1
            log.info("model %d edge %d scores %s; phase 1 on this rank: %d/%d steps, %s", model, edge,
                     record["matrix"][edge], done, total, eta(time.time() - t_start, done, total - done))
    records = [read_json(run.run_dir / "valuation" / f"model{m}.json")
               for m in models_of_rank(npop, run.env.rank, run.env.world_size)]
    parts = D.all_gather_object(([r["matrix"] for r in records], sum(r["seconds"] for r in records)))
    matrices = [m for mats, _ in parts for m in mats]
    average = np.mean(np.array(matrices, dtype=float), axis=0)
    if run.env.is_main:
        write_json(run.run_dir / "valuation" / "average.json",
                   {"primitives": list(prims), "npop": npop, "matrix": np.round(average, 4).tolist()})
    log.info("population average valuation:\n%s", np.array2string(average, precision=2))
    return average, max(seconds for _, seconds in parts)
