"""The supernet-based search (SPEC §6): train the supernet (every operation on every edge),
then the same fine and topology decisions as the evolutionary search."""
from __future__ import annotations

from .errors import UserError
from .search import SearchRun
from .search_config import SupernetConfig
from .seeding import derive_seed
from .switches import full_switches


def run_supernet(cfg: SupernetConfig, given: dict) -> SearchRun:
    if cfg.pretrain_epochs < 0:
        raise UserError(f"--pretrain_epochs {cfg.pretrain_epochs}: expected 0 or more")
    run = SearchRun(cfg, "supernet", given)
    cfg = run.cfg

    def pretrain():
        switches = full_switches(run.primitives)
        net = run.build(switches, derive_seed(cfg.seed, "decision", 0))
        optimizer = run.train_stage(net, cfg.pretrain_epochs, cfg.scaled_lr, 0, "pretrain", True, "phases2_4")
        return switches, net, optimizer

    switches, history = run.run_decisions("pretrain", pretrain)
    run.finish(switches, history, time_phase1=0.0)
    return run
