"""Last step of `make setup`: the venv must import what every command needs (one line, exit 1 if not)."""

import importlib
import sys

MODULES = ("torch", "torchvision", "ffcv", "numba", "yaml", "matplotlib", "nas")

missing = []
for name in MODULES:
    try:
        importlib.import_module(name)
    except Exception as exc:  # an ImportError, or a broken native build raising anything else
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
if missing:
    sys.exit("setup: the venv cannot import " + "; ".join(missing) + " -- rerun `make setup`")
import torch  # noqa: E402

print(f"setup: ok (python {sys.version.split()[0]}, torch {torch.__version__}, cuda {torch.cuda.is_available()})")
