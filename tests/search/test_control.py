"""The random-scores control (--scores random): the same candidates computed, the scores drawn."""

import json

import pytest
import torch

from nas.core.seeding import derive_seed
from nas.search.config import EvolutionaryConfig, SupernetConfig
from nas.search.perturb import perturb_val, random_score
from nas.search.selection import fine_select, topology_select
from nas.space.primitives import PRIMITIVES
from nas.space.switches import make_switches
from tests.helpers import only_run_dir, run_search, tiny_args
from tests.search.test_perturb import Batches, setup

CANDIDATES = [(3, "skip_connect"), (3, "sep_conv_3x3"), (3, "max_pool_3x3"), (3, None)]


def test_a_controls_scores_are_the_seeds_draws_whatever_the_network_measured():
    measured = []
    drawn = []
    for train_seed in (1, 5):  # two networks fine-tuned on other batches measure other scores
        net, opt, data = setup()
        data.train = Batches(seed=train_seed)
        measured.append(perturb_val(net, opt, CANDIDATES, data, finetune_steps=2, data_epoch=0, seed=1).scores)
        net, opt, data = setup()
        data.train = Batches(seed=train_seed)
        res = perturb_val(net, opt, CANDIDATES, data, finetune_steps=2, data_epoch=0, seed=1, random_scores=7)
        drawn.append(res.scores)
        assert 0.0 <= res.acc_before <= 100.0  # still measured: val_acc of a control is the network's
    assert measured[0] != measured[1]
    assert drawn[0] == drawn[1] == {c: random_score(7, c) for c in CANDIDATES}
    assert drawn[0] != measured[0]
    # another seed, other draws; every draw in [-1, 1), none tied
    other = {c: random_score(8, c) for c in CANDIDATES}
    assert other != drawn[0]
    assert all(-1.0 <= v < 1.0 for v in drawn[0].values()) and len(set(drawn[0].values())) == len(CANDIDATES)


def test_a_controls_draw_depends_on_its_step_and_candidate_alone():
    # a candidate's draw is the same whichever rank or position computes it (and after a resume)
    a = {c: random_score(3, c) for c in CANDIDATES}
    b = {c: random_score(3, c) for c in reversed(CANDIDATES)}
    assert a == b
    assert random_score(3, (4, "skip_connect")) != random_score(3, (3, "skip_connect"))


def test_random_draws_make_each_decision_a_uniform_choice():
    # the rules keep the lowest scores: over many seeds every candidate wins about equally often
    sw = make_switches([list(PRIMITIVES)] * 14)
    wins = {op: 0 for op in PRIMITIVES}
    for seed in range(1400):
        scores = {op: random_score(seed, (0, op)) for op in PRIMITIVES}
        wins[fine_select(sw, 0, scores, PRIMITIVES)[0][0]] += 1
    assert all(150 <= n <= 250 for n in wins.values()), wins  # 200 expected each
    kept = {}
    one = make_switches([["skip_connect"]] * 14)
    for seed in range(600):
        scores = {e: random_score(seed, (e, None)) for e in (2, 3, 4)}
        pair = tuple(e for e in (2, 3, 4) if topology_select(one, 1, scores, PRIMITIVES)[e])
        kept[pair] = kept.get(pair, 0) + 1
    assert sorted(kept) == [(2, 3), (2, 4), (3, 4)] and all(150 <= n <= 250 for n in kept.values()), kept


def test_the_trainer_draws_a_controls_scores_from_the_run_seed_and_the_step(monkeypatch):
    from nas.search import stages

    calls = []
    monkeypatch.setattr(stages, "perturb_val", lambda *a, **kw: calls.append(kw))
    for cfg_cls in (EvolutionaryConfig, SupernetConfig):
        for scores in ("perturb-val", "random"):
            trainer = stages.Trainer.__new__(stages.Trainer)
            trainer.cfg, trainer.split_decisions = cfg_cls(seed=11, scores=scores), False
            trainer.perturb_data, trainer.steps = None, stages.StepCounts()
            trainer.perturb(torch.nn.Linear(1, 1), None, CANDIDATES, phase=3, key=("decision", 4), parallel=True)
    expected = derive_seed(11, "random-scores", ("decision", 4))
    assert [kw["random_scores"] for kw in calls] == [None, expected, None, expected]
    assert EvolutionaryConfig(scores="random").control and not SupernetConfig().control


@pytest.mark.slow
def test_a_control_search_decides_on_the_seeds_draws_alone(tmp_path, digits_root):
    save = tmp_path / "runs"
    proc = run_search(
        "search_evolutionary.py", *tiny_args(digits_root, save, "--seed", "5", "--npop", "1", "--scores", "random")
    )
    run = only_run_dir(save)
    assert "every decision takes random scores drawn from seed 5" in proc.stderr + proc.stdout
    assert json.loads((run / "summary.json").read_text())["scores"] == "random"
    assert "scores: random" in (run / "config.yaml").read_text()
    # phase 1: the valuation matrix holds the draws of each (model, edge) step
    record = json.loads((run / "valuation" / "model0.json").read_text())
    for edge, row in enumerate(record["matrix"]):
        step = derive_seed(5, "random-scores", ("phase1", 0, edge))
        assert row == [round(random_score(step, (edge, op)), 4) for op in PRIMITIVES]
    # phases 2-4: each decision's scores are its step's draws, and it kept the lowest
    decisions = json.loads((run / "decisions.json").read_text())
    fine = [d for d in decisions if d["name"].startswith("fine_edge") and d.get("scores")]
    topology = [d for d in decisions if d["name"].startswith("topology_node")]
    assert fine and len(topology) == 3
    for d in fine + topology:
        step = derive_seed(5, "random-scores", ("decision", d["decision"] - 1))
        if d in fine:
            edge = int(d["name"].removeprefix("fine_edge"))
            assert d["scores"] == {op: random_score(step, (edge, op)) for op in d["scores"]}
            assert d["selected"] == min(d["scores"], key=d["scores"].get)
        else:
            assert d["scores"] == {e: random_score(step, (int(e), None)) for e in d["scores"]}
            assert sorted(d["kept_edges"]) == sorted(int(e) for e in sorted(d["scores"], key=d["scores"].get)[:2])
