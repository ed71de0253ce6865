"""The toolkit as an installed package: its data ships inside it, it declares what it needs, and
every launcher runs as `python -m` from any directory (scripts/check_wheel.sh does it for real)."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

import nas
from nas.core import config
from nas.genotype import specs
from tests.helpers import ROOT

PACKAGE = ROOT / "nas"


def test_presets_and_library_are_package_data():
    """Found inside the package, not beside it in the clone, so a wheel installed anywhere has them."""
    assert config.PRESET_DIR == PACKAGE / "configs"
    assert {"tiny", "paper"} <= {p.stem for p in config.PRESET_DIR.glob("*.yaml")}
    assert specs.LIBRARY_DIR == PACKAGE / "genotype" / "library" and "DARTS_V2" in specs.library_names()
    assert not (ROOT / "configs").exists() and not (ROOT / "genotypes").exists(), "one copy, inside the package"


def test_the_wheel_holds_the_presets_the_library_the_launchers_and_the_dependencies(tmp_path):
    src = tmp_path / "src"  # a copy, so that the build leaves no build/ in the clone
    shutil.copytree(ROOT / "nas", src / "nas", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--wheel-dir", tmp_path, src],
        check=True, capture_output=True, cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    (wheel,) = tmp_path.glob("pertnas-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [p.relative_to(ROOT).as_posix() for d in ("configs", "genotype/library") for p in (PACKAGE / d).iterdir()]
    assert data and set(data) <= names
    assert {"nas/search/__main__.py", "nas/evaluation/__main__.py", "nas/tools/__main__.py"} <= names
    assert wheel.name.startswith(f"pertnas-{nas.__version__}-")
    meta = zipfile.ZipFile(wheel).read(f"pertnas-{nas.__version__}.dist-info/METADATA").decode().splitlines()
    required = {line.split()[1].split(">")[0].split("=")[0] for line in meta if line.startswith("Requires-Dist:")}
    tools = {"torch", "torchvision", "numpy", "pyyaml", "tensorboard", "pillow", "scikit-learn", "matplotlib"}
    assert tools | {"graphviz", "ffcv", "onnx", "nasbench301", "pytest", "ruff", "mkdocs"} <= required
    extras = {line.split()[1] for line in meta if line.startswith("Provides-Extra:")}
    assert extras == {"ffcv", "onnx", "nb301", "dev"}


def test_a_missing_optional_dependency_names_its_extra(monkeypatch, tmp_path):
    from nas.core.errors import UserError
    from nas.evaluation.export import export_onnx

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(UserError, match=r"pip install 'pertnas\[onnx\]'"):
        export_onnx({}, tmp_path / "net.onnx")

    from nas.data import loaders
    from nas.data.datasets import get_dataset

    monkeypatch.setattr(loaders, "ffcv_missing_reason", lambda: "ModuleNotFoundError: No module named 'ffcv'")
    with pytest.raises(UserError, match=r"pip install 'pertnas\[ffcv\]'"):
        loaders.choose_backend(loaders.DataConfig(root=str(tmp_path), loader="ffcv"), get_dataset("cifar10"))


def python_m(*args, cwd):
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_version_and_the_launchers_as_modules_from_another_directory(tmp_path):
    assert python_m("nas.tools", "--version", cwd=tmp_path).stdout == f"pertnas {nas.__version__}\n"
    proc = python_m("nas.search", "darts", cwd=tmp_path)
    assert proc.returncode == 2 and "pertnas search 'darts': expected one of evolutionary, supernet" in proc.stderr
    proc = python_m("nas.evaluation", "cifar", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "usage: python -m nas.evaluation" in proc.stdout and "--arch" in proc.stdout
    proc = python_m("nas.search", "evolutionary", "--preset", "nope", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown preset 'nope': expected one of ['paper', 'tiny']" in proc.stderr


@pytest.mark.slow
def test_the_installed_wheel_works_outside_the_clone():
    """scripts/check_wheel.sh: build, install without the editable install, search, evaluate, report."""
    proc = subprocess.run(
        ["bash", ROOT / "scripts" / "check_wheel.sh"],
        capture_output=True, text=True, timeout=900, env={**os.environ, "PY": sys.executable},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "check_wheel: ok:" in proc.stdout
