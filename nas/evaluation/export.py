"""A cell for use outside the toolkit (python -m nas.genotype export): one standalone Python
file that builds the evaluation network with torch alone (the code of standalone.py after
the genotype and the network's settings), and the ONNX graph of a trained evaluation checkpoint.
"""

from __future__ import annotations

import pprint
import warnings
from pathlib import Path
from typing import Optional

import torch

from nas.core.errors import UserError, install_extra
from nas.core.files import atomic_write, open_regular, write_text
from nas.evaluation import standalone
from nas.genotype import Genotype, format_literal, genotype_from_dict, genotype_to_dict

MARKER = "# ---- standalone code"
# The published evaluation networks (docs/method.md, "Evaluation"), the defaults of an export from a genotype.
PUBLISHED = {
    "cifar": {"network": "cifar", "C": 36, "num_classes": 10, "layers": 20, "auxiliary": True, "image_size": 32},
    "imagenet": {
        "network": "imagenet",
        "C": 48,
        "num_classes": 1000,
        "layers": 14,
        "auxiliary": False,
        "image_size": 224,
    },
}

HEADER = '''"""The evaluation network of a PertNAS cell, with torch alone (written by
`python -m nas.genotype export {source}`).

    from {module} import build, load
    model = build()                          # the network of SETTINGS, freshly initialised
    model = load("checkpoints/model_best.pt") # with the weights of a PertNAS evaluation run
    logits = model(images)                   # in eval mode: the logits

The cell (DARTS literal): {literal}
"""
'''

FOOTER = '''

def build(**overrides):
    """The network of GENOTYPE with SETTINGS (any of them overridden)."""
    return Network(GENOTYPE, **{**SETTINGS, **overrides})


def load(path, map_location="cpu", **overrides):
    """The network with the weights of a PertNAS evaluation checkpoint (its "model" state dict), in eval mode."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    state = checkpoint["model"] if isinstance(checkpoint, dict) and "model" in checkpoint else checkpoint
    model = build(**overrides)
    model.load_state_dict(state)
    return model.eval()
'''


def settings_of_checkpoint(ckpt: dict) -> dict:
    """The network an evaluation checkpoint trained: its task, size, classes and input size."""
    cfg, dataset = ckpt["config"], ckpt["dataset"]
    return {
        "network": ckpt["eval_task"],
        "C": cfg["init_channels"],
        "num_classes": dataset["num_classes"],
        "layers": cfg["layers"],
        "auxiliary": cfg["auxiliary"],
        "image_size": dataset["image_size"],
    }


def read_checkpoint(path: Path) -> dict:
    """An evaluation checkpoint (model_best.pt or last.pt) with the keys an export needs."""
    try:
        with open_regular(path) as f:
            ckpt = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file is the user's
        raise UserError(f"{path} is not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or not all(
        k in ckpt for k in ("eval_task", "config", "dataset", "genotype", "model")
    ):
        raise UserError(f"{path} is not a checkpoint of an evaluation run: expected checkpoints/model_best.pt of one")
    return ckpt


def checkpoint_of(spec: str) -> Optional[Path]:
    """The checkpoint a SPEC names: a .pt file, or an evaluation run directory's model_best.pt; None for a genotype."""
    path = Path(spec)
    if path.is_file() and path.suffix == ".pt":
        return path
    best = path / "checkpoints" / "model_best.pt"
    if path.is_dir() and best.is_file():
        return best
    return None


def standalone_source(genotype: Genotype, settings: dict, *, source: str, module: str) -> str:
    """The text of the standalone file: header, GENOTYPE, SETTINGS, the code of standalone.py, build/load."""
    code = Path(standalone.__file__).read_text().split(MARKER, 1)[1].split("\n", 1)[1]
    imports, code = code.split("\n\n\n", 1)  # the imports first, then the genotype and settings
    cells = genotype_to_dict(genotype)
    return (
        HEADER.format(source=source, module=module, literal=format_literal(genotype))
        + imports
        + "\n\n"
        + f"GENOTYPE = {pprint.pformat(cells, width=110, compact=True)}\n"
        + f"SETTINGS = {pprint.pformat(settings, width=110, sort_dicts=False)}\n\n\n"
        + code
        + FOOTER
    )


def write_standalone(out: Path, genotype: Genotype, settings: dict, *, source: str) -> None:
    if out.suffix != ".py":
        raise UserError(f"--out {out}: expected a .py file name (it is imported as a module)")
    try:
        write_text(out, standalone_source(genotype, settings, source=source, module=out.stem))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None


def export_onnx(ckpt: dict, out: Path) -> None:
    """The trained network of `ckpt` as an ONNX graph: input `image` (N, 3, H, W), output `logits`, any batch size."""
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise UserError(f"--onnx needs the onnx package, which does not import here: {install_extra('onnx')}") from None
    settings = settings_of_checkpoint(ckpt)
    model = standalone.Network(genotype_to_dict(genotype_from_dict(ckpt["genotype"])), **settings)
    model.load_state_dict(ckpt["model"])
    model.eval()
    size = settings["image_size"]
    example = torch.zeros(1, 3, size, size)

    def write(f) -> None:
        # the TorchScript-based exporter: the dynamo one needs onnxscript, which the toolkit does not require
        with warnings.catch_warnings():  # FactorizedReduce's x[:, :, 1:, 1:] is not constant-folded: harmless
            warnings.filterwarnings("ignore", message="Constant folding")
            torch.onnx.export(
                model,
                (example,),
                f,
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )

    try:
        atomic_write(out, write, mode="wb")
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
