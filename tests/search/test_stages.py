"""The search's training stages and decisions on a stand-in data set: how perturb-val is fed."""

from types import SimpleNamespace

from nas.core.distributed import DistEnv
from nas.core.engine import Precision
from nas.search.config import EvolutionaryConfig
from nas.search.decisions import TOPOLOGY, Decision, topology_decision
from nas.search.perturb import PerturbResult
from nas.search.stages import Trainer
from nas.space.switches import make_switches
from tests.search.test_perturb import Batches


class Board:
    def add_scalar(self, *args):
        pass


def make_trainer(**overrides):
    cfg = EvolutionaryConfig(init_channels=4, layers=3, batch_size=64, **overrides)
    data = SimpleNamespace(
        train_full=Batches(), train_shard=Batches(), val=Batches(seed=1), num_classes=10, image_size=32
    )
    return Trainer(cfg, DistEnv(), data, Precision(), Board())


def test_finetuning_takes_f_plus_one_steps_in_every_phase():
    trainer = make_trainer()  # finetune_steps 50, extra 20 / 80 / 130
    # phases 1, 3 and 4 in docs/method.md's numbering: valuation, fine and topology selection
    assert [trainer.finetune_steps(p) for p in (1, 3, 4)] == [71, 131, 181]
    assert make_trainer(finetune_steps=2, finetune_extra=(1, 2, 3)).finetune_steps(4) == 6
    assert make_trainer(fast=True).finetune_steps(3) == 1


def test_topology_candidates_finetune_from_a_fresh_optimizer_at_lr_over_2_5(monkeypatch):
    trainer = make_trainer(learning_rate=0.2176)  # batch 64: scaled lr 0.0544, topology lr 0.02176
    one_op = make_switches([["sep_conv_3x3"]] * 14)
    net = trainer.build(one_op, seed=0)
    seen = {}

    def fake_perturb_val(net, optimizer, candidates, data, *, finetune_steps, **kwargs):
        seen.update(
            lr=optimizer.param_groups[0]["lr"],
            momentum=optimizer.param_groups[0]["momentum"],
            state=dict(optimizer.state),
            steps=finetune_steps,
            params=[p for g in optimizer.param_groups for p in g["params"]],
        )
        return PerturbResult({c: -float(c[0]) for c in candidates}, 50.0)

    monkeypatch.setattr("nas.search.stages.perturb_val", fake_perturb_val)
    entry = {}
    decision = Decision(index=15, kind=TOPOLOGY, target=2, name="topology_node2")
    switches = topology_decision(trainer, one_op, net, decision, entry)
    assert abs(seen["lr"] - 0.2176 * 64 / 256 / 2.5) < 1e-12 and seen["momentum"] == 0.9
    assert seen["state"] == {}  # no momentum history from the last training stage
    assert seen["params"] == list(net.parameters())
    assert seen["steps"] == 50 + 130 + 1
    assert entry["kept_edges"] == [7, 8] and [len(switches[e]) for e in (5, 6, 7, 8)] == [0, 0, 1, 1]


def test_topology_candidates_all_perturbs_every_edge_in_index_order(monkeypatch):
    """The original scores all 14 edges (dropped ones and node 0's too) before each topology
    decision, then picks the node's two edges from those scores."""
    seen = []

    def fake_perturb_val(net, optimizer, candidates, data, **kwargs):
        seen.append(list(candidates))
        return PerturbResult({c: float(c[0] % 3) for c in candidates}, 50.0)

    monkeypatch.setattr("nas.search.stages.perturb_val", fake_perturb_val)
    decided = make_switches([[] if e == 3 else ["sep_conv_3x3"] for e in range(14)])  # node 1 dropped edge 3
    for mode, perturbed in (("node", [5, 6, 7, 8]), ("all", list(range(14)))):
        trainer = make_trainer(topology_candidates=mode)
        entry = {}
        switches = topology_decision(
            trainer,
            decided,
            trainer.build(decided, seed=0),
            Decision(index=15, kind=TOPOLOGY, target=2, name="topology_node2"),
            entry,
        )
        assert seen.pop() == [(e, None) for e in perturbed]
        assert list(entry["scores"]) == [str(e) for e in perturbed]  # decisions.json: in the order perturbed
        # scores 5:2 6:0 7:1 8:2 -> edges 6 and 7, whatever the other edges scored
        assert entry["kept_edges"] == [6, 7] and [len(switches[e]) for e in (3, 5, 6, 7, 8)] == [0, 0, 1, 1, 0]
