"""Phase 1 of the evolutionary search (docs/method.md, "The evolutionary search"): population valuation.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.core import distributed as D
from nas.core.errors import UserError
from nas.core.files import read_json, write_json
from nas.core.rundir import VALUATION, eta
from nas.core.seeding import derive_seed
from nas.space.primitives import NUM_EDGES
from nas.search.stages import Trainer
from nas.space.switches import random_switches, to_lists, with_edge

log = logging.getLogger("nas")


def models_of_rank(npop: int, rank: int, world: int) -> range:
    if npop < 1 or npop % world:
        raise UserError(f"--npop {npop} is not a positive multiple of the number of processes ({world})")
    per_rank = npop // world
    return range(rank * per_rank, (rank + 1) * per_rank)


def initial_switches(seed: int, model: int, op_cap: int, prims):
    return random_switches(op_cap, random.Random(derive_seed(seed, "initial-switches", model)), prims)


@dataclass
class Phase1:
    average: np.ndarray   # the population's average valuation matrix (14 x ops), the same on every rank
    seconds: float        # the phase's time: the slowest rank's, restarts included


def value_population(trainer: Trainer, run_dir: Path, *, npop: int, op_cap: int) -> Phase1:
    cfg, env, prims = trainer.cfg, trainer.env, trainer.primitives
    my_models = models_of_rank(npop, env.rank, env.world_size)
    total, done, t_start = len(my_models) * NUM_EDGES, 0, time.time()
    for model in my_models:
        path = run_dir / VALUATION / f"model{model}.json"
        initial = initial_switches(cfg.seed, model, op_cap, prims)
        record = read_record(path) if path.is_file() else {
            "model": model, "primitives": list(prims), "initial_switches": to_lists(initial),
            "matrix": [None] * NUM_EDGES, "steps": 0, "seconds": 0.0}
        trainer.steps.phase1 += record["steps"]
        log.info("model %d: initial switches %s", model, record["initial_switches"])
        for edge in range(NUM_EDGES):
            if record["matrix"][edge] is not None:
                total -= 1
                continue  # done before a restart
            tic, steps_before = time.time(), trainer.steps.phase1
            switches = with_edge(initial, edge, prims, prims)  # this edge expanded, the others as initialised
            key = derive_seed(cfg.seed, "phase1", model, edge)
            net = trainer.build(switches, seed=key)
            optimizer = trainer.train_stage(net, epochs=cfg.stage_epochs, lr=cfg.scaled_lr / 2.5, data_key=key % 100_000,
                                            tag=f"model{model} edge{edge}", parallel=False)
            scores = trainer.perturb(net, optimizer, [(edge, op) for op in prims], phase=1, key=("phase1", model, edge),
                                     parallel=False).scores
            record["matrix"][edge] = [round(scores[(edge, op)], 4) for op in prims]
            record["steps"] += trainer.steps.phase1 - steps_before
            record["seconds"] = round(record["seconds"] + time.time() - tic, 2)
            write_json(path, record)
            for op in prims:
                trainer.tb.add_scalar(f"valuation/model{model}/edge{edge}/{op}", scores[(edge, op)], edge)
            done += 1
            log.info("model %d edge %d scores %s; phase 1 on this rank: %d/%d steps, %s", model, edge,
                     record["matrix"][edge], done, total, eta(time.time() - t_start, done, total - done))
    records = [read_record(run_dir / VALUATION / f"model{m}.json") for m in my_models]
    parts = D.all_gather_object(([r["matrix"] for r in records], sum(r["seconds"] for r in records)))
    matrices = [m for mats, _ in parts for m in mats]
    average = np.mean(np.array(matrices, dtype=float), axis=0)
    if env.is_main:
        write_json(run_dir / VALUATION / "average.json",
                   {"primitives": list(prims), "npop": npop, "matrix": np.round(average, 4).tolist()})
    log.info("population average valuation:\n%s", np.array2string(average, precision=2))
    return Phase1(average=average, seconds=max(seconds for _, seconds in parts))


def read_record(path: Path) -> dict:
    """A model's valuation record; a damaged one is a one-line error that says how to redo it."""
    try:
        record = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is unreadable ({type(exc).__name__}): delete it to redo that model's valuation") from None
    keys = ("matrix", "steps", "seconds", "initial_switches")
    if not isinstance(record, dict) or any(k not in record for k in keys) or len(record["matrix"]) != NUM_EDGES:
        raise UserError(f"{path} is not a valuation record: delete it to redo that model's valuation")
    return record
