"""The set-up's pre-flight (scripts/setup_system.sh): where `make setup` cannot succeed, one line
names what is missing and the command that installs it, with a non-zero exit."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "setup_system.sh"


def fake_bin(tmp_path, *, uid="1000", compiler=True, python=sys.executable):
    """A PATH with the tools the script uses; `id` says we are not root, so it names what to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dpkg-query", "grep", "env"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    if compiler:
        (bin_dir / "cc").symlink_to(shutil.which("cc") or "/bin/true")
    (bin_dir / "python3").symlink_to(python)
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "id").chmod(0o755)
    return bin_dir


def run(bin_dir, *packages, python=None):
    env = {"PATH": str(bin_dir), **({"PYTHON": python} if python else {})}
    return subprocess.run(["/bin/bash", str(SCRIPT), *packages], capture_output=True, text=True, env=env, timeout=60)


def assert_one_line_failure(proc, *fragments):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("setup: ") and proc.stderr.count("\n") == 1, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")


@needs_dpkg
def test_nothing_missing_passes(tmp_path):
    proc = run(fake_bin(tmp_path), "bash")
    assert proc.returncode == 0 and proc.stderr == ""


@needs_dpkg
def test_a_missing_system_package_is_named_with_its_install_command(tmp_path):
    proc = run(fake_bin(tmp_path), "bash", "pertnas-no-such-package")
    assert_one_line_failure(
        proc, "missing system packages: pertnas-no-such-package", "sudo apt-get install pertnas-no-such-package"
    )


@needs_dpkg
def test_a_missing_compiler_is_named(tmp_path):
    proc = run(fake_bin(tmp_path, compiler=False), "bash")
    assert_one_line_failure(proc, "build-essential")


def test_an_old_python_is_refused(tmp_path):
    old = tmp_path / "python-old"
    old.write_text("#!/bin/sh\n[ \"$1\" = -V ] && { echo 'Python 3.9.18'; exit 0; }\nexit 1\n")
    old.chmod(0o755)
    proc = run(fake_bin(tmp_path), python=str(old))
    assert_one_line_failure(proc, "Python 3.9.18 is too old", "Python >= 3.10")


def test_a_missing_python_is_refused(tmp_path):
    proc = run(fake_bin(tmp_path), python="python-nowhere")
    assert_one_line_failure(proc, "no python-nowhere found", "apt-get install python3")


def test_the_installed_venv_imports_everything_a_command_needs():
    """What `make setup` checks last (and CI with it): the venv's own python imports them."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_install.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("setup: ok (python ")


def test_one_minimum_python_is_declared_checked_and_parsed():
    """pyproject's requires-python, the pre-flight's check, and the syntax of every file agree."""
    import ast
    import re

    declared = re.search(r'requires-python = ">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    checked = re.search(r"sys.version_info < \(3, (\d+)\)", (ROOT / "scripts" / "setup_system.sh").read_text())
    assert declared and checked and declared.group(1) == checked.group(1)
    minimum = (3, int(declared.group(1)))
    for path in ROOT.rglob("*.py"):
        if not {".venv", "runs", "data", "build"} & set(path.relative_to(ROOT).parts):
            ast.parse(path.read_text(), filename=str(path), feature_version=minimum)
