"""`pertnas`: one command that lists every tool and hands each its arguments."""

import subprocess
import sys
from pathlib import Path

from nas.tools import cli
from tests.helpers import ROOT


def pertnas(*args, cwd=ROOT):
    """The console script `make setup` installs (pyproject's [project.scripts]), else python -m nas.tools."""
    exe = Path(sys.executable).parent / "pertnas"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "nas.tools"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_help_lists_every_tool_with_one_line():
    proc = pertnas("--help")
    assert proc.returncode == 0
    listed = [line.split()[0] for line in proc.stdout.split("tools:\n")[1].splitlines() if line.strip()]
    assert listed == list(cli.TOOLS)
    assert {"report", "genotype", "data", "runs", "nb301", "bench"} <= set(listed)


def test_every_tool_module_exists_and_has_a_main():
    import importlib

    for name, (module, kind, _) in cli.TOOLS.items():
        if module is not None:
            assert callable(importlib.import_module(module).main), name


def test_an_unknown_tool_is_one_line_and_exit_2():
    proc = pertnas("nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown tool 'nope': expected one of " + ", ".join(cli.TOOLS) + " (pertnas --help)"
    ]


def test_a_launcher_tool_names_its_choices():
    proc = pertnas("search", "darts")
    assert proc.returncode == 2
    assert "pertnas search 'darts': expected one of evolutionary, supernet" in proc.stderr


def test_a_tool_gets_its_arguments(tmp_path):
    src = tmp_path / "g.txt"
    cell = repr([("sep_conv_3x3", 0), ("skip_connect", 1)] * 4)
    src.write_text(
        f"MINE = Genotype(normal={cell}, normal_concat=range(2, 6), reduce={cell}, reduce_concat=range(2, 6))\n"
    )
    proc = pertnas("import-genotypes", src, "--out", tmp_path / "lib")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "lib" / "MINE.json").is_file()
