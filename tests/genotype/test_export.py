"""python -m nas.genotype export: a standalone torch-only file of the evaluation network whose
load() reads this toolkit's checkpoints, and the ONNX graph of a trained network. Nothing is
trained: the toolkit's network and the exported one are built from the same weights."""

import ast
import importlib.util

import pytest
import torch

from nas.core.errors import UserError
from nas.core.files import torch_save, write_yaml
from nas.evaluation.networks import NetworkCIFAR, NetworkImageNet
from nas.genotype import genotype_to_dict, load_genotype
from nas.tools.genotype import main as genotype_cli


def import_file(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def only_torch_imports(path) -> bool:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    return imported <= {"torch", "torch.nn"}


@pytest.fixture
def eval_run(tmp_path):
    """An evaluation run directory holding a model_best.pt as EvalRun writes it (random weights,
    BN statistics made non-trivial so that eval-mode outputs depend on them)."""
    g = load_genotype("DARTS_V2")
    torch.manual_seed(0)
    net = NetworkCIFAR(8, 10, 5, True, g)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    run = tmp_path / "eval-x-20240101-000000"
    write_yaml(run / "config.yaml", {"eval_task": "cifar", "arch": "DARTS_V2"})
    torch_save(
        run / "checkpoints" / "model_best.pt",
        {
            "eval_task": "cifar",
            "config": {
                "init_channels": 8,
                "layers": 5,
                "auxiliary": True,
                "arch": "DARTS_V2",
                "drop_path_prob": 0.3,
                "reduce_arch": None,
            },
            "genotype": genotype_to_dict(g),
            "dataset": {"name": "cifar10", "num_classes": 10, "image_size": 32},
            "model": net.state_dict(),
            "epoch": 3,
            "best_top1": 50.0,
            "best_epoch": 3,
            "history": [],
            "elapsed_s": 1.0,
        },
    )
    return run, net.eval()


def test_exported_file_loads_a_checkpoint_and_computes_the_same_logits(eval_run, tmp_path):
    run, net = eval_run
    genotype_cli(["export", str(run), "--out", str(tmp_path / "cell.py")])
    assert only_torch_imports(tmp_path / "cell.py")  # no import of this package
    cell = import_file(tmp_path / "cell.py")
    model = cell.load(run / "checkpoints" / "model_best.pt")
    assert set(model.state_dict()) == set(net.state_dict())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), net(x)[0])
    # training mode with the auxiliary head: both heads, the same batch statistics
    model.train(), net.train()
    logits, aux = model(x)
    expected, expected_aux = net(x)
    assert torch.equal(logits, expected) and torch.equal(aux, expected_aux)


def test_exported_imagenet_network_of_a_genotype_takes_the_toolkit_weights(tmp_path):
    genotype_cli(
        [
            "export",
            "PDARTS",
            "--network",
            "imagenet",
            "--init_channels",
            "8",
            "--layers",
            "5",
            "--classes",
            "7",
            "--out",
            str(tmp_path / "inet.py"),
        ]
    )
    cell = import_file(tmp_path / "inet.py")
    assert cell.SETTINGS == {
        "network": "imagenet",
        "C": 8,
        "num_classes": 7,
        "layers": 5,
        "auxiliary": False,
        "image_size": 224,
    }
    torch.manual_seed(1)
    net = NetworkImageNet(8, 7, 5, False, load_genotype("PDARTS"), image_size=64).eval()
    model = cell.build(image_size=64).eval()
    model.load_state_dict(net.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), net(x)[0])


def test_onnx_graph_of_a_checkpoint_matches_torch(eval_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    run, net = eval_run
    genotype_cli(["export", str(run / "checkpoints" / "model_best.pt"), "--onnx", str(tmp_path / "m.onnx")])
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 32, 32)  # another batch size than the export's example
    (got,) = session.run(["logits"], {"image": x.numpy()})
    with torch.no_grad():
        expected = net(x)[0].numpy()
    assert got.shape == expected.shape
    assert abs(got - expected).max() < 1e-4


def test_export_bad_input(eval_run, tmp_path):
    run, _ = eval_run
    with pytest.raises(UserError, match="expected --out FILE.py, --onnx FILE.onnx, or both"):
        genotype_cli(["export", "DARTS_V2"])
    with pytest.raises(UserError, match="--onnx: DARTS_V2 is a genotype, not a trained network"):
        genotype_cli(["export", "DARTS_V2", "--onnx", str(tmp_path / "m.onnx")])
    with pytest.raises(UserError, match="--layers: .* whose network is fixed by the run"):
        genotype_cli(["export", str(run), "--layers", "8", "--out", str(tmp_path / "c.py")])
    with pytest.raises(UserError, match="--out .*cell.txt: expected a .py file name"):
        genotype_cli(["export", "DARTS_V2", "--out", str(tmp_path / "cell.txt")])
    with pytest.raises(UserError, match="--layers 2: expected at least 3"):
        genotype_cli(["export", "DARTS_V2", "--layers", "2", "--out", str(tmp_path / "c.py")])
    assert not list(tmp_path.glob("*.py")) and not list(tmp_path.glob("*.onnx"))
