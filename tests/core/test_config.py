import dataclasses
import re

import pytest

from nas.core.config import parse
from nas.core.errors import UserError
from nas.evaluation.config import CifarEvalConfig, ImageNetEvalConfig
from nas.search.config import EvolutionaryConfig, SupernetConfig
from tests.helpers import ROOT


def test_defaults_follow_the_spec():
    cfg, given = parse(EvolutionaryConfig, [])
    assert given == {}
    assert (cfg.npop, cfg.op_cap, cfg.finetune_steps, cfg.finetune_extra) == (4, 1, 50, (20, 80, 130))
    assert (cfg.batch_size, cfg.learning_rate, cfg.learning_rate_min) == (256, 0.2176, 0.001)
    assert (cfg.momentum, cfg.weight_decay, cfg.grad_clip) == (0.9, 3e-4, 0.0)
    assert (cfg.layers, cfg.init_channels, cfg.stage_epochs) == (5, 16, 5)
    assert cfg.val_protocol == "holdout"
    assert SupernetConfig().pretrain_epochs == 20


def test_underscore_and_dash_spellings_and_boolean_negation():
    cfg, given = parse(EvolutionaryConfig, ["--train_path", "a", "--op-cap", "2", "--no-channels-last", "--fast"])
    assert (cfg.train_path, cfg.op_cap, cfg.channels_last, cfg.fast) == ("a", 2, False, True)
    assert set(given) == {"train_path", "op_cap", "channels_last", "fast"}


def test_yaml_sets_values_and_flags_override(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("npop: 8\nbatch-size: 64\nfinetune_extra: [1, 2, 3]\n")
    cfg, _ = parse(EvolutionaryConfig, ["--config", str(f), "--npop", "2"])
    assert (cfg.npop, cfg.batch_size, cfg.finetune_extra) == (2, 64, (1, 2, 3))


def test_preset_is_a_named_yaml():
    cfg, _ = parse(EvolutionaryConfig, ["--preset", "tiny"])
    assert cfg.init_channels < 16


@pytest.mark.parametrize(
    "text, message",
    [
        ("nopop: 3\n", "unknown key 'nopop'"),
        ("npop: three\n", "config key 'npop' = 'three' has type str: expected int"),
        ("learning_rate: true\n", "expected float"),
        ("val_protocol: test-set\n", "expected one of"),
        ("- 1\n", "must hold a mapping"),
        ("npop: [\n", "not valid YAML"),
    ],
)
def test_bad_yaml(tmp_path, text, message):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=message):
        parse(EvolutionaryConfig, ["--config", str(f)])


def test_missing_config_file_and_unknown_preset(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        parse(EvolutionaryConfig, ["--config", str(tmp_path / "nope.yaml")])
    with pytest.raises(UserError, match="unknown preset 'huge'"):
        parse(EvolutionaryConfig, ["--preset", "huge"])


def test_bad_flag_value_is_a_one_line_error():
    with pytest.raises(UserError, match=re.escape("argument --npop: invalid int value: 'x' (see --help)")):
        parse(EvolutionaryConfig, ["--npop", "x"])
    with pytest.raises(UserError, match="unrecognized arguments: --nopop"):
        parse(EvolutionaryConfig, ["--nopop", "2"])


def test_method_sections_apply_to_their_own_search_only(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("layers: 4\nevolutionary:\n  npop: 6\nsupernet:\n  pretrain_epochs: 3\n")
    evo, _ = parse(EvolutionaryConfig, ["--config", str(f)])
    sup, _ = parse(SupernetConfig, ["--config", str(f)])
    assert (evo.layers, evo.npop, sup.layers, sup.pretrain_epochs) == (4, 6, 4, 3)
    f.write_text("supernet:\n  npop: 2\n")
    with pytest.raises(UserError, match="unknown key 'npop'"):
        parse(SupernetConfig, ["--config", str(f)])


@pytest.mark.parametrize(
    "cls, argv, message",
    [
        (EvolutionaryConfig, ["--init_channels", "0"], "--init_channels 0: expected 1 or more"),
        (EvolutionaryConfig, ["--learning_rate", "-1"], "--learning_rate -1.0: expected more than 0"),
        (EvolutionaryConfig, ["--learning_rate", "nan"], "--learning_rate nan: expected more than 0"),
        (EvolutionaryConfig, ["--stage_epochs", "0"], "--stage_epochs 0: expected 1 or more"),
        (EvolutionaryConfig, ["--layers", "1"], "--layers 1: expected 3 or more"),
        (EvolutionaryConfig, ["--finetune_extra", "5", "-1", "3"], "--finetune_extra 5 -1 3: expected 0 or more"),
        (SupernetConfig, ["--pretrain_epochs", "-1"], "--pretrain_epochs -1: expected 0 or more"),
        (SupernetConfig, ["--momentum", "1.5"], "--momentum 1.5: expected a number from 0 to 1"),
        (CifarEvalConfig, ["--label_smooth", "2"], "--label_smooth 2.0: expected a number from 0 to 1"),
        (CifarEvalConfig, ["--drop_path_prob", "-0.1"], "--drop_path_prob -0.1: expected a number from 0 to 1"),
        (ImageNetEvalConfig, ["--epochs", "0"], "--epochs 0: expected 1 or more"),
    ],
)
def test_values_out_of_range_are_refused_from_flags(cls, argv, message):
    with pytest.raises(UserError, match=re.escape(message)):
        parse(cls, argv)


def test_values_out_of_range_are_refused_from_yaml_too(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("search:\n  workers: -2\n")
    with pytest.raises(UserError, match=re.escape("--workers -2: expected 0 or more")):
        parse(EvolutionaryConfig, ["--config", str(f)])


def test_one_file_configures_every_script_through_its_sections(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "seed: 3\nsearch:\n  layers: 4\nevolutionary:\n  npop: 6\nevaluation:\n  epochs: 7\n"
        "cifar:\n  cutout_length: 8\nimagenet:\n  epochs: 9\n"
    )
    evo, _ = parse(EvolutionaryConfig, ["--config", str(f)])
    sup, _ = parse(SupernetConfig, ["--config", str(f)])
    cifar, _ = parse(CifarEvalConfig, ["--config", str(f)])
    imagenet, _ = parse(ImageNetEvalConfig, ["--config", str(f)])
    assert (evo.seed, evo.layers, evo.npop, sup.layers, sup.seed) == (3, 4, 6, 4, 3)
    assert (cifar.seed, cifar.epochs, cifar.cutout_length, imagenet.epochs) == (3, 7, 8, 9)


def test_given_counts_what_the_config_file_and_preset_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: 7\nevolutionary:\n  npop: 2\n")
    _, given = parse(EvolutionaryConfig, ["--preset", "tiny", "--config", str(f), "--workers", "1"])
    assert given["seed"] == 7 and given["npop"] == 2 and given["workers"] == 1 and given["init_channels"] == 4


# docs/method.md, "Where we deviate from the original": every row's paper value
SEARCH_PAPER = {
    "val_protocol": "test",
    "perturb_restore": "accumulate",
    "perturb_batches": "fresh",
    "amp": "auto",
    "op_set": "original",
    "topology_candidates": "all",
    "off_ops": "zero",
    "norm_constants": "original",
    "decision_parallel": "replicate",
}
PAPER = {
    EvolutionaryConfig: {**SEARCH_PAPER, "population_seed": "shared"},
    SupernetConfig: {**SEARCH_PAPER, "inherit_weights": True},
    CifarEvalConfig: {"norm_constants": "original", "drop_last": False},
    ImageNetEvalConfig: {"amp": "off", "drop_last": False},
}


@pytest.mark.parametrize("cls", list(PAPER))
def test_paper_preset_restores_the_original_for_every_deviation(cls):
    default, _ = parse(cls, [])
    paper, _ = parse(cls, ["--preset", "paper"])
    for key, original in PAPER[cls].items():
        assert getattr(paper, key) == original and getattr(default, key) != original, key
    changed = {k for k in dataclasses.asdict(default) if getattr(default, k) != getattr(paper, k)}
    assert changed == set(PAPER[cls])  # nothing else moves
    one, _ = parse(cls, ["--preset", "paper", "--amp", "bf16"])  # ablate one correction at a time
    assert one.amp == "bf16"


def test_paper_precision_resolved_per_script():
    """The original searched in fp16 + GradScaler and trained both evaluations in fp32."""
    import torch

    from nas.core.engine import Precision

    cuda = torch.device("cuda")
    resolved = {
        cls.__name__: Precision.choose(cuda, parse(cls, ["--preset", "paper"])[0].amp).dtype
        for cls in (EvolutionaryConfig, SupernetConfig, CifarEvalConfig, ImageNetEvalConfig)
    }
    assert resolved == {
        "EvolutionaryConfig": torch.float16,
        "SupernetConfig": torch.float16,
        "CifarEvalConfig": None,
        "ImageNetEvalConfig": None,
    }  # None: fp32, no autocast


def test_the_method_doc_lists_every_paper_deviation():
    table = (ROOT / "docs" / "method.md").read_text()
    for values in PAPER.values():
        for key, value in values.items():
            flag = f"--{key}" if value is True else f"--no-{key}" if value is False else f"`{value}`"
            assert flag in table and key in table, key


# ---------------------------------------------------------------- aliases (old keys)
def test_dataset_flag_and_the_old_cifar100_alias(tmp_path):
    from nas.evaluation.config import CifarEvalConfig

    for cls in (EvolutionaryConfig, CifarEvalConfig):
        assert parse(cls, [])[0].dataset == "cifar10"
        assert parse(cls, ["--dataset", "digits"])[0].dataset == "digits"
        cfg, given = parse(cls, ["--cifar100"])
        assert cfg.dataset == "cifar100" and given == {"dataset": "cifar100"}
        assert parse(cls, ["--cifar100", "--no-cifar100"])[0].dataset == "cifar10"  # the last flag wins
        f = tmp_path / "old.yaml"
        f.write_text("cifar100: true\n")
        assert parse(cls, ["--config", str(f)])[0].dataset == "cifar100"
        f.write_text("cifar100: maybe\n")
        with pytest.raises(UserError, match="'cifar100' = 'maybe'.*expected bool"):
            parse(cls, ["--config", str(f)])
        with pytest.raises(UserError, match="--dataset imagenet: expected a 32x32 data set"):
            parse(cls, ["--dataset", "imagenet"])
        with pytest.raises(UserError, match="--dataset 'mnist': expected one of cifar10, cifar100, imagenet, digits"):
            parse(cls, ["--dataset", "mnist"])


def test_an_old_runs_saved_config_resumes_through_the_alias():
    from nas.core.config import resume_config, to_dict

    old = {k: v for k, v in to_dict(EvolutionaryConfig()).items() if k != "dataset"}
    cfg = resume_config(EvolutionaryConfig, {**old, "cifar100": True}, {}, what="--resume r", source="r/config.yaml")
    assert cfg.dataset == "cifar100"
    assert (
        resume_config(
            EvolutionaryConfig, {**old, "cifar100": False}, {}, what="--resume r", source="r/config.yaml"
        ).dataset
        == "cifar10"
    )
    with pytest.raises(UserError, match=r"--dataset cifar100 \(run has cifar10\)"):
        resume_config(
            EvolutionaryConfig,
            {**old, "cifar100": False},
            parse(EvolutionaryConfig, ["--cifar100"])[1],
            what="--resume r",
            source="r/config.yaml",
        )


def test_every_script_takes_both_names_of_the_data_root():
    for cls in (EvolutionaryConfig, SupernetConfig):
        for flag in ("--data", "--train_path"):
            cfg, given = parse(cls, [flag, "d/x"])
            assert cfg.train_path == "d/x" and given == {"train_path": "d/x"}
    for cls in (CifarEvalConfig, ImageNetEvalConfig):
        for flag in ("--data", "--train_path", "--train-path"):
            cfg, given = parse(cls, [flag, "d/y"])
            assert cfg.data == "d/y" and given == {"data": "d/y"}
    assert parse(CifarEvalConfig, ["--cifar100"])[0].dataset == "cifar100"  # the older alias still there


@pytest.mark.parametrize("cls", [EvolutionaryConfig, SupernetConfig, CifarEvalConfig, ImageNetEvalConfig])
def test_every_number_of_every_config_is_finite(cls):
    """The range check of the config machinery, not each flag's own: inf and NaN are refused
    for every float option, whatever its range."""
    from nas.core.config import _base_type, _hints

    floats = [f.name for f in dataclasses.fields(cls) if _base_type(_hints(cls)[f.name])[0] is float]
    assert len(floats) >= 5
    for name in floats:
        for value in ("inf", "nan"):
            with pytest.raises(UserError, match=f"--{name} {value}: expected"):
                parse(cls, [f"--{name}", value])
