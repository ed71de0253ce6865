"""Phase 1's processes: how many value a rank's models, and what a failing helper does."""

import dataclasses
import logging

import pytest
import torch

from nas.core.distributed import DistEnv
from nas.core.engine import Precision
from nas.core.errors import UserError
from nas.search.config import EvolutionaryConfig
from nas.search.evolutionary import phase1_procs
from nas.search.population import HelperProcesses


@pytest.mark.parametrize(
    "given, npop, world, device, threads, expected",
    [
        (0, 4, 1, "cpu", 2, 2),  # auto on the CPU: a process per thread...
        (0, 4, 2, "cpu", 8, 2),  # ...up to the process's models
        (0, 4, 1, "cuda", 8, 1),  # auto on a GPU: one, until measured there
        (3, 4, 1, "cpu", 1, 3),  # given: as given, up to the cores (4 here)
        (8, 8, 1, "cuda", 1, 4),  # more than the cores: as many as the cores, with a warning
    ],
)
def test_phase1_procs_auto_and_given(given, npop, world, device, threads, expected, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr("nas.core.distributed.available_cores", lambda: 4)
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logging.getLogger("nas").addHandler(handler)
    try:
        cfg = EvolutionaryConfig(npop=npop, phase1_procs=given)
        assert phase1_procs(cfg, DistEnv(world_size=world, device=torch.device(device))) == expected
    finally:
        logging.getLogger("nas").removeHandler(handler)
    warnings = [r.getMessage() for r in records]
    assert warnings == (["--phase1_procs 8: more than the 4 cores this process may use; using 4"] if given == 8 else [])


def test_a_failing_helper_stops_its_rank_with_one_line_naming_its_log(tmp_path):
    cfg = dataclasses.replace(EvolutionaryConfig(), train_path=str(tmp_path / "no-data"), device="cpu", workers=0)
    with pytest.raises(UserError) as err:
        with HelperProcesses(cfg, DistEnv(), Precision(), tmp_path, [[1]], op_cap=1) as helpers:
            helpers.wait()
    message = str(err.value)
    assert "phase-1 helper process 1 of rank 0 (models 1) exited with code 1" in message and "\n" not in message
    assert f"see {tmp_path / 'log_rank0_proc1.txt'}; then --resume {tmp_path}" in message
    assert "no-data" in (tmp_path / "log_rank0_proc1.txt").read_text()  # the cause is in the helper's log


def test_a_helper_that_cannot_write_says_so_in_one_line(digits_root, tmp_path, capfd):
    from nas.core.config import parse

    cfg, _ = parse(
        EvolutionaryConfig,
        ["--preset", "tiny", "--fast", "--train_path", str(digits_root), "--loader", "torch", "--no-progress"],
    )
    (tmp_path / "valuation").write_text("a file where the records' folder goes")  # the write fails (EEXIST)
    with pytest.raises(UserError, match="phase-1 helper process 1 of rank 0 \\(models 0\\) exited with code 1"):
        with HelperProcesses(cfg, DistEnv(), Precision(), tmp_path, [[0]], op_cap=1) as helpers:
            helpers.wait()
    err = capfd.readouterr().err
    assert f"error: phase-1 helper process 1 of rank 0: {tmp_path / 'valuation' / 'model0.json'}: File exists\n" in err
    assert "Traceback" not in err, err


class _FirstStep(Exception):
    pass


def _first_step_of(model, cfg, data, monkeypatch, tmp_path):
    """(first training batch, stem weights, initial switches) of `model`'s first phase-1 step, as
    value_models builds and trains it (stopped at the first batch)."""
    from nas.search import population, stages
    from nas.search.stages import Trainer

    seen = {}

    def first_batch(net, loader, *args, **kwargs):
        images, labels = next(iter(loader))
        seen.update(images=images, labels=labels, stem=net.stem[0].weight.detach().clone())
        raise _FirstStep

    monkeypatch.setattr(stages, "train", first_batch)
    trainer = Trainer(cfg, DistEnv(), data, Precision(), population._NoBoard())
    with pytest.raises(_FirstStep):
        population.value_models(trainer, tmp_path, [model], op_cap=cfg.op_cap)
    seen["switches"] = population.initial_switches(cfg.seed, model, cfg.op_cap, trainer.primitives)
    return seen


@pytest.mark.parametrize("population_seed", ["shared", "independent"])
def test_a_shared_population_seed_gives_every_model_the_same_batches_and_weights(
    population_seed, digits_root, monkeypatch, tmp_path
):
    """The original seeded torch and NumPy with --seed on every rank: every model's first network
    drew its weights from the same stream and read the same batches. `shared` does that."""
    from nas.core.config import parse
    from nas.search.driver import open_search_data

    flags = ["--preset", "tiny", "--train_path", str(digits_root), "--loader", "torch", "--workers", "0"]
    cfg, _ = parse(EvolutionaryConfig, [*flags, "--population_seed", population_seed])
    data = open_search_data(cfg, DistEnv(), Precision())
    first, second = (_first_step_of(m, cfg, data, monkeypatch, tmp_path) for m in (0, 1))
    assert first["switches"] != second["switches"]  # the models themselves differ either way
    same = [torch.equal(first[k], second[k]) for k in ("images", "labels", "stem")]
    assert same == ([True] * 3 if population_seed == "shared" else [False] * 3)


def test_the_paper_preset_shares_the_population_seed():
    from nas.core.config import parse

    assert parse(EvolutionaryConfig, [])[0].population_seed == "independent"
    assert parse(EvolutionaryConfig, ["--preset", "paper"])[0].population_seed == "shared"
    assert parse(EvolutionaryConfig, ["--preset", "paper", "--population_seed", "independent"])[0].population_seed == (
        "independent"
    )
