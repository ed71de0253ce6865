"""The supernet-based search (docs/method.md): train the supernet (every operation on every
edge), then the same fine and topology decisions as the evolutionary search."""

from __future__ import annotations

from nas.search.config import SupernetConfig
from nas.search.registry import SearchMethod, register
from nas.space.switches import full_switches


def _pretrain(run, phase1, *, seed: int):
    trainer = run.trainer
    switches = full_switches(trainer.primitives)
    net = trainer.build(switches, seed=seed)
    optimizer = trainer.train_stage(
        net, epochs=run.cfg.pretrain_epochs, lr=run.cfg.scaled_lr, data_key=0, tag="pretrain", parallel=True
    )
    return switches, net, optimizer


register(SearchMethod(name="supernet", config=SupernetConfig, start_name="pretrain", start=_pretrain))
