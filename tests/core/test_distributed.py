import pytest

from nas.core import distributed as D
from nas.core.errors import UserError


def test_single_process_without_torchrun(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    env = D.init_distributed("local", "cpu")
    assert (env.rank, env.world_size, env.is_main, env.distributed) == (0, 1, True, False)
    assert D.all_gather_object({"a": 1}) == [{"a": 1}]
    assert D.check_agreement((1, 2), "x") == (1, 2)


def test_global_rank_comes_from_slurm_procid_not_localid(monkeypatch):
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "1")  # world 1: no group is made, but the ranks are read
    env = D.init_distributed("slurm", "cpu")
    assert (env.rank, env.local_rank) == (5, 1)


def test_slurm_without_srun_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    with pytest.raises(UserError, match="launch with srun"):
        D.init_distributed("slurm", "cpu")


def test_bad_rank_variable(monkeypatch):
    monkeypatch.setenv("RANK", "zero")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(UserError, match="RANK='zero' is not an integer"):
        D.init_distributed("local", "cpu")
