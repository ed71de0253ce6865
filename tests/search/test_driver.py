"""The search driver's pieces that need no training (the end-to-end runs are in test_search_e2e.py)."""

import pytest

from nas.core.config import mismatched_keys, to_dict
from nas.core.errors import UserError
from nas.core.files import write_json, write_yaml
from nas.search.checkpoints import find_resumable
from nas.search.config import EvolutionaryConfig
from nas.search.decisions import FINE, START, TOPOLOGY, plan, renumber


def test_an_elastic_restart_finds_its_unfinished_run(tmp_path):
    """torchrun restarts workers with the original flags: they must find the run they were in."""
    cfg = EvolutionaryConfig(save=str(tmp_path), note="x", npop=2)
    for name, status, npop in (
        ("search-x-1", "finished", 2),
        ("search-x-2", "running", 4),
        ("search-x-3", "running", 2),
    ):
        run = tmp_path / name
        write_yaml(
            run / "config.yaml",
            {"method": "evolutionary", **to_dict(EvolutionaryConfig(save="elsewhere", note="x", npop=npop))},
        )
        write_json(run / "state.json", {"status": status})
    assert find_resumable(cfg, "evolutionary") == str(tmp_path / "search-x-3")
    assert find_resumable(cfg, "supernet") is None


def test_decision_sequence_follows_the_method():
    decisions = plan("coarse", seed=1)
    assert len(decisions) == 18 and [d.index for d in decisions] == list(range(18))
    assert (decisions[0].kind, decisions[0].name) == (START, "coarse")
    assert [d.kind for d in decisions[1:15]] == [FINE] * 14
    assert [d.target for d in decisions[1:15]] == [13, 12, 8, 11, 7, 4, 9, 10, 5, 6, 2, 3, 0, 1]
    assert [d.name for d in decisions[1:3]] == ["fine_edge13", "fine_edge12"]  # the names old run directories hold
    assert [d.kind for d in decisions[15:]] == [TOPOLOGY] * 3 and sorted(d.target for d in decisions[15:]) == [1, 2, 3]
    assert [d.last for d in decisions] == [False] * 17 + [True]
    assert [d.name for d in plan("pretrain", seed=1)[15:]] == [d.name for d in decisions[15:]]  # node order: seed only
    assert decisions[4].label == "decision 5/18 (fine_edge11)"  # the one way logs and the report count


def test_a_resumed_old_history_is_renumbered_from_one():
    old = [{"decision": 0, "name": "coarse"}, {"decision": 1, "name": "fine_edge13"}]  # before 1-based numbering
    assert renumber(old) == [
        {"decision": 1, "decisions": 18, "name": "coarse"},
        {"decision": 2, "decisions": 18, "name": "fine_edge13"},
    ]
    assert renumber(renumber(old)) == renumber(old)  # a history already counted from 1 stays as it is


def test_resume_may_change_where_a_run_runs_but_not_what_it_computes():
    saved = to_dict(EvolutionaryConfig())
    assert mismatched_keys(EvolutionaryConfig, saved, {"train_path": "/new/place", "workers": 2}) == []
    assert mismatched_keys(EvolutionaryConfig, saved, {"npop": 8, "seed": 1}) == ["npop"]


def test_a_chained_restore_is_refused_over_split_ranks():
    from nas.search.driver import check_decision_parallel

    chained = EvolutionaryConfig(perturb_restore="accumulate")
    check_decision_parallel(chained, 1)  # one process: the chain is whole
    check_decision_parallel(EvolutionaryConfig(perturb_restore="accumulate", decision_parallel="replicate"), 2)
    check_decision_parallel(EvolutionaryConfig(), 2)  # exact: candidates independent, split freely
    with pytest.raises(
        UserError, match="--perturb_restore accumulate with 2 processes: expected --decision_parallel replicate"
    ):
        check_decision_parallel(chained, 2)
