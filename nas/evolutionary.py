"""The evolutionary search (SPEC §5): population valuation, coarse selection, then the
shared fine and topology decisions."""
from __future__ import annotations

from .population import models_of_rank, value_population
from .search import SearchRun
from .search_config import EvolutionaryConfig
from .seeding import derive_seed
from .selection import coarse_select


def run_evolutionary(cfg: EvolutionaryConfig, given: dict) -> SearchRun:
    run = SearchRun(cfg, "evolutionary", given,
                    check=lambda r: models_of_rank(r.cfg.npop, r.env.rank, r.env.world_size))  # a bad --npop fails early
    cfg = run.cfg
    average, time_phase1 = value_population(run, cfg.npop, cfg.op_cap)

    def coarse():
        switches = coarse_select(average, run.primitives, keep=2)
        net = run.build(switches, derive_seed(cfg.seed, "decision", 0))
        optimizer = run.train_stage(net, cfg.stage_epochs, cfg.scaled_lr / 3, 0, "coarse", True, "phases2_4")
        return switches, net, optimizer

    switches, history = run.run_decisions("coarse", coarse)
    run.finish(switches, history, time_phase1)
    return run
