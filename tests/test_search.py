"""The search driver's pieces that need no training (the end-to-end runs are in test_search_e2e.py)."""
from nas.config import to_dict
from nas.io import write_json, write_yaml
from nas.search import decision_names, find_resumable, mismatched_keys
from nas.search_config import EvolutionaryConfig
def test_an_elastic_restart_finds_its_unfinished_run(tmp_path):
    """torchrun restarts workers with the original flags: they must find the run they were in."""
    cfg = EvolutionaryConfig(save=str(tmp_path), note="x", npop=2)
    for name, status, npop in (("search-x-1", "finished", 2), ("search-x-2", "running", 4), ("search-x-3", "running", 2)):
        run = tmp_path / name
        write_yaml(run / "config.yaml", {"method": "evolutionary", **to_dict(EvolutionaryConfig(save="elsewhere",
                                                                                                note="x", npop=npop))})
        write_json(run / "state.json", {"status": status})
    assert find_resumable(cfg, "evolutionary") == str(tmp_path / "search-x-3")
    assert find_resumable(cfg, "supernet") is None


def test_decision_sequence_follows_the_spec():
    names = decision_names("coarse", seed=1)
    assert names[0] == "coarse" and len(names) == 18
    assert [int(n.removeprefix("fine_edge")) for n in names[1:15]] == [13, 12, 8, 11, 7, 4, 9, 10, 5, 6, 2, 3, 0, 1]
    assert sorted(names[15:]) == ["topology_node1", "topology_node2", "topology_node3"]
    assert decision_names("pretrain", seed=1)[15:] == names[15:]  # the node order depends on the seed only


def test_resume_may_change_where_a_run_runs_but_not_what_it_computes():
    saved = to_dict(EvolutionaryConfig())
    assert mismatched_keys(saved, {"train_path": "/new/place", "workers": 2}) == []
    assert mismatched_keys(saved, {"npop": 8, "seed": 1}) == ["npop"]
