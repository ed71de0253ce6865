"""What several test folders share: the repository's paths and running a script as a user would."""
import importlib.util
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The shared reference data sits beside the checkout (in CI too); tests that need it skip without it.
SHARED = ROOT.parent / "shared"


def run_script(*args, env=None, cwd=ROOT):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=600)


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr


def load_script(name: str):
    """A script of scripts/ as a module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), ROOT / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
