"""The evolutionary search (docs/method.md): population valuation (phase 1), coarse
selection, then the shared fine and topology decisions."""

from __future__ import annotations

import logging

import torch

from nas.core import distributed as D
from nas.core.errors import UserError
from nas.search.config import EvolutionaryConfig
from nas.search.population import models_of_rank, value_population
from nas.search.registry import SearchMethod, register
from nas.search.selection import coarse_select

log = logging.getLogger("nas")


def _phase1(run):
    return value_population(
        run.trainer, run.run_dir, npop=run.cfg.npop, op_cap=run.cfg.op_cap, procs=phase1_procs(run.cfg, run.env)
    )


def phase1_procs(cfg, env) -> int:
    """--phase1_procs, with 0 (auto) decided here once: on the CPU one process per thread this
    process may use (threads are then shared among them), up to its models; on a GPU one."""
    if cfg.phase1_procs:
        cores = D.available_cores()
        if cfg.phase1_procs > cores:  # a process beyond the cores only waits for one
            log.warning(
                "--phase1_procs %d: more than the %d cores this process may use; using %d",
                cfg.phase1_procs,
                cores,
                cores,
            )
            return cores
        return cfg.phase1_procs
    if env.device.type != "cpu":
        return 1
    return min(len(models_of_rank(cfg.npop, env.rank, env.world_size)), torch.get_num_threads())


def _coarse(run, phase1, *, seed: int):
    """Keep each edge's two operations with the lowest average score; train at lr/3."""
    trainer = run.trainer
    switches = coarse_select(phase1.average, trainer.primitives, keep=2)
    net = trainer.build(switches, seed=seed)
    optimizer = trainer.train_stage(
        net, epochs=run.cfg.stage_epochs, lr=run.cfg.scaled_lr / 3, data_key=0, tag="coarse", parallel=True
    )
    return switches, net, optimizer


def _check(cfg, env) -> None:
    per_rank = len(models_of_rank(cfg.npop, env.rank, env.world_size))
    if cfg.phase1_procs > per_rank:
        raise UserError(
            f"--phase1_procs {cfg.phase1_procs}: expected at most the {per_rank} population model(s) "
            f"of each process (--npop {cfg.npop} over {env.world_size})"
        )


register(
    SearchMethod(
        name="evolutionary", config=EvolutionaryConfig, start_name="coarse", start=_coarse, phase1=_phase1, check=_check
    )
)
