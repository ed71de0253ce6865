"""Phase 1 of the evolutionary search (docs/method.md, "The evolutionary search"): population valuation.

Each of `npop` discrete models starts with `op_cap` random operations per edge. For every
edge in turn, the model's edge is expanded to all operations, a fresh network is trained,
and perturb-val scores the edge's operations into that row of the model's valuation
matrix. Models are split over the ranks, and a rank's models over its `--phase1_procs`
processes; every (model, edge) step is saved as it ends, so a resumed run redoes at most
one step per process.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.multiprocessing as mp
from tqdm import tqdm

from nas.core import distributed as D
from nas.core import stop
from nas.core.errors import UserError, describe_os_error
from nas.core.files import read_json, write_json
from nas.core.rundir import STAGES, VALUATION, eta, peak_memory_mb
from nas.core.seeding import derive_seed, set_determinism
from nas.search.stages import Trainer
from nas.space.primitives import NUM_EDGES
from nas.space.switches import random_switches, to_lists, with_edge

log = logging.getLogger("nas")


def models_of_rank(npop: int, rank: int, world: int) -> range:
    if npop < 1 or npop % world:
        raise UserError(f"--npop {npop} is not a positive multiple of the number of processes ({world})")
    per_rank = npop // world
    return range(rank * per_rank, (rank + 1) * per_rank)


def step_key(model: int, edge: int, population_seed: str) -> tuple:
    """The seed key of a (model, edge) step: its network's weights, its training batches and
    its perturb-val draw from it. `shared` leaves the model out, so every model's step of an
    edge draws the same numbers (docs/method.md, "Population seeds")."""
    return ("phase1", edge) if population_seed == "shared" else ("phase1", model, edge)


def initial_switches(seed: int, model: int, op_cap: int, prims):
    return random_switches(op_cap, random.Random(derive_seed(seed, "initial-switches", model)), prims)


@dataclass
class Phase1:
    average: np.ndarray  # the population's average valuation matrix (14 x ops), the same on every rank
    seconds: float  # the phase's time: the slowest process's, restarts included
    helper_peak_mb: tuple = ()  # peak memory of this rank's helper processes (their records'), in order


def value_population(trainer: Trainer, run_dir: Path, *, npop: int, op_cap: int, procs: int = 1) -> Phase1:
    """Value this rank's models (`procs` processes at once on its device: this one and procs - 1
    helpers, each with its own share of the models), then average every rank's matrices."""
    cfg, env, prims = trainer.cfg, trainer.env, trainer.primitives
    my_models = models_of_rank(npop, env.rank, env.world_size)
    shares = [list(my_models)[p::procs] for p in range(procs)]
    # the phase's wall time on this rank: this call's, plus the longest share's before a restart
    tic = time.time()
    before = max(sum(_seconds_done(run_dir / VALUATION / f"model{m}.json") for m in share) for share in shares)
    with HelperProcesses(cfg, env, trainer.precision, run_dir, shares[1:], op_cap=op_cap) as helpers:
        value_models(trainer, run_dir, shares[0], op_cap=op_cap, on_edge=helpers.check)
        helpers.wait()
    records = {m: read_record(run_dir / VALUATION / f"model{m}.json") for m in my_models}
    for share in shares[1:]:  # the helpers' steps and scores, counted and logged by this rank
        for m in share:
            trainer.steps.phase1 += records[m]["steps"]
            for edge, row in enumerate(records[m]["matrix"]):
                for op, score in zip(prims, row):
                    trainer.tb.add_scalar(f"valuation/model{m}/edge{edge}/{op}", score, edge)
    seconds = before + time.time() - tic
    parts = D.all_gather_object(([records[m]["matrix"] for m in my_models], seconds))
    matrices = [m for mats, _ in parts for m in mats]
    average = np.mean(np.array(matrices, dtype=float), axis=0)
    if env.is_main:
        write_json(
            run_dir / VALUATION / "average.json",
            {"primitives": list(prims), "npop": npop, "matrix": np.round(average, 4).tolist()},
        )
    log.info(
        "population average valuation%s:\n%s",
        f" ({cfg.scores_label})" if cfg.control else "",
        np.array2string(average, precision=2),
    )
    helper_peaks = tuple(max(records[m].get("peak_memory_mb", 0.0) for m in share) for share in shares[1:])
    return Phase1(average=average, seconds=max(seconds for _, seconds in parts), helper_peak_mb=helper_peaks)


def value_models(
    trainer: Trainer, run_dir: Path, models: Sequence[int], *, op_cap: int, on_edge: Callable[[], None] = lambda: None
) -> None:
    """Every (model, edge) step of `models` not yet done, each saved to valuation/model<m>.json as
    it ends. A step depends only on its seeds, so any process may take any model."""
    cfg, prims = trainer.cfg, trainer.primitives
    total, done, t_start = len(models) * NUM_EDGES, 0, time.time()
    for model in models:
        path = run_dir / VALUATION / f"model{model}.json"
        initial = initial_switches(cfg.seed, model, op_cap, prims)
        record = (
            read_record(path)
            if path.is_file()
            else {
                "model": model,
                "primitives": list(prims),
                "initial_switches": to_lists(initial),
                "matrix": [None] * NUM_EDGES,
                "steps": 0,
                "seconds": 0.0,
            }
        )
        trainer.steps.phase1 += record["steps"]
        log.info("model %d: initial switches %s", model, record["initial_switches"])
        for edge in range(NUM_EDGES):
            if record["matrix"][edge] is not None:
                total -= 1
                continue  # done before a restart
            tic, steps_before = time.time(), trainer.steps.phase1
            switches = with_edge(initial, edge, prims, prims)  # this edge expanded, the others as initialised
            keys = step_key(model, edge, cfg.population_seed)
            key = derive_seed(cfg.seed, *keys)
            net = trainer.build(switches, seed=key)
            optimizer = trainer.train_stage(
                net,
                epochs=cfg.stage_epochs,
                lr=cfg.scaled_lr / 2.5,
                data_key=key % 100_000,
                tag=f"model{model} edge{edge}",
                parallel=False,
            )
            scores = trainer.perturb(
                net, optimizer, [(edge, op) for op in prims], phase=1, key=keys, parallel=False
            ).scores
            record["matrix"][edge] = [round(scores[(edge, op)], 4) for op in prims]
            record["steps"] += trainer.steps.phase1 - steps_before
            record["seconds"] = round(record["seconds"] + time.time() - tic, 2)
            # the writing process's peak so far: its rank's summary takes the largest of its processes
            record["peak_memory_mb"] = round(
                max(record.get("peak_memory_mb", 0.0), peak_memory_mb(trainer.env.device)), 1
            )
            write_json(path, record)
            stop.safe_point(f"phase 1, model {model} edge {edge}", run_dir)  # a helper process is never armed
            for op in prims:
                trainer.tb.add_scalar(f"valuation/model{model}/edge{edge}/{op}", scores[(edge, op)], edge)
            done += 1
            log.info(
                "model %d edge %d %s %s; phase 1 in this process: %d/%d steps, %s",
                model,
                edge,
                cfg.scores_label,
                record["matrix"][edge],
                done,
                total,
                eta(time.time() - t_start, done, total - done),
            )
            on_edge()


class HelperProcesses:
    """Phase-1 helper processes of one rank, on its device (`--phase1_procs`): each values its
    share of the models and exits. A model takes one process's Python and launches, which
    leave a GPU mostly idle; several processes keep it busy. A helper that fails stops this
    rank with a one-line error (its log names the cause); a helper whose rank dies exits."""

    def __init__(self, cfg, env, precision, run_dir: Path, shares: Sequence[Sequence[int]], *, op_cap: int):
        self.cfg, self.env, self.precision, self.run_dir = cfg, env, precision, run_dir
        self.shares, self.op_cap = shares, op_cap
        self.procs: list = []

    def __enter__(self) -> "HelperProcesses":
        if not self.shares:
            return self
        self.threads = torch.get_num_threads()
        # the rank's cores, shared among its processes (helpers get the same count)
        torch.set_num_threads(max(1, self.threads // (len(self.shares) + 1)))
        ctx = mp.get_context("spawn")  # a CUDA process cannot fork
        for proc, models in enumerate(self.shares, start=1):
            p = ctx.Process(
                target=_helper_main,
                name=f"phase1-rank{self.env.rank}-proc{proc}",
                args=(
                    self.cfg,
                    self.env,
                    self.precision,
                    self.run_dir,
                    proc,
                    list(models),
                    self.op_cap,
                    torch.get_num_threads(),
                    os.getpid(),
                ),
            )
            p.start()
            self.procs.append((proc, models, p))
        log.info(
            "phase 1: %d processes on %s; helpers value models %s (log_rank%d_proc<p>.txt)",
            len(self.shares) + 1,
            self.env.device,
            [list(m) for m in self.shares],
            self.env.rank,
        )
        return self

    def check(self) -> None:
        for proc, models, p in self.procs:
            if p.exitcode not in (None, 0):
                raise UserError(
                    f"phase-1 helper process {proc} of rank {self.env.rank} (models "
                    f"{', '.join(map(str, models))}) exited with code {p.exitcode}: see "
                    f"{self.run_dir / f'log_rank{self.env.rank}_proc{proc}.txt'}; then --resume {self.run_dir}"
                )

    def wait(self) -> None:
        for _, _, p in self.procs:
            while True:
                p.join(timeout=1.0)
                # checked first: a helper ended by the same signal is no failure
                stop.safe_point("this process's phase-1 steps (the helpers' finished steps are kept)", self.run_dir)
                if p.exitcode is not None:
                    break
            self.check()

    def __exit__(self, *exc) -> None:
        for _, _, p in self.procs:
            if p.is_alive():  # this rank failed: its helpers' finished steps are on disk for --resume
                p.terminate()
                p.join()
        if self.procs:
            torch.set_num_threads(self.threads)


def _helper_main(
    cfg, env, precision, run_dir: Path, proc: int, models: list, op_cap: int, threads: int, parent: int
) -> None:
    from nas.core.rundir import setup_logging
    from nas.search.driver import open_search_data

    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    # tqdm's default lock is a multiprocessing one, a named semaphore in a spawned process: a
    # helper killed while it holds one leaves the resource tracker a "leaked semaphore". Its
    # bars are off; a thread lock serves.
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)
    setup_logging(run_dir, env.rank, proc)
    cfg = replace(cfg, progress=False)  # the rank's main process shows progress
    if env.device.type == "cuda":
        torch.cuda.set_device(env.device)
        set_determinism(cfg.deterministic, env.device)
    # no TensorBoard writer of its own: the rank logs its helpers' scores from their records
    trainer = Trainer(
        cfg, env, open_search_data(cfg, env, precision), precision, _NoBoard(), stage_log=run_dir / STAGES
    )
    try:
        value_models(trainer, run_dir, models, op_cap=op_cap)
    except OSError as exc:  # disk full, read-only: one line, not a traceback (its rank stops with its own)
        print(f"error: phase-1 helper process {proc} of rank {env.rank}: {describe_os_error(exc)}", file=sys.stderr)
        sys.exit(1)
    except BaseException:
        log.exception("phase-1 helper process %d failed", proc)
        raise


class _NoBoard:
    def add_scalar(self, *args, **kwargs) -> None:
        pass


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(2.0)
    os._exit(1)


def _seconds_done(path: Path) -> float:
    return read_record(path)["seconds"] if path.is_file() else 0.0


def read_record(path: Path) -> dict:
    """A model's valuation record; a damaged one is a one-line error that says how to redo it."""
    try:
        record = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(
            f"{path} is unreadable ({type(exc).__name__}): delete it to redo that model's valuation"
        ) from None
    keys = ("matrix", "steps", "seconds", "initial_switches")
    if not isinstance(record, dict) or any(k not in record for k in keys) or len(record["matrix"]) != NUM_EDGES:
        raise UserError(f"{path} is not a valuation record: delete it to redo that model's valuation")
    return record
