"""`pertnas`: every tool of the toolkit behind one command.

    pertnas TOOL [ARGS...]      (pertnas TOOL --help for its flags; pertnas --version)

The tools are imported only when named, so `pertnas --help` answers at once. Several
processes start from the launchers, in a clone (torchrun search_evolutionary.py ...) or
from an installed package (torchrun -m nas.search evolutionary ..., -m nas.evaluation cifar);
the old spellings (python -m nas.report, python scripts/collect_runs.py, ...) keep working.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Optional, Sequence

import nas
from nas.core.errors import UserError, run_cli

# name -> (module, how it is called, one line of help). "main" tools take argv; launchers take (name, doc, argv).
TOOLS = {
    "search": ("nas.search.launch", "launch", "a search in this process: pertnas search evolutionary|supernet [flags]"),
    "eval": ("nas.evaluation.launch", "launch", "train a cell from scratch: pertnas eval cifar|imagenet [flags]"),
    "report": ("nas.tools.report", "main", "the HTML report of a search, a sweep or an evaluation run"),
    "genotype": ("nas.tools.genotype", "main", "show, plot, convert or export a genotype; its NB301 config"),
    "data": ("nas.tools.data", "main", "write a data set (CIFAR, ImageNet, digits, your class folders) as a data root"),
    "runs": ("nas.tools.runs", "main", "the table of search and evaluation runs under a directory; the top-2 pair"),
    "nb301": ("nas.tools.nb301", "main", "NAS-Bench-301 predictions of genotypes (needs nasbench301)"),
    "import-genotypes": ("nas.tools.import_genotypes", "main", "add DARTS-literal genotypes to the library"),
    "bench": (None, "bench", "the benchmarks (benchmarks/bench_all.py) of a source checkout"),
}
LAUNCHED = {"search": ("evolutionary", "supernet"), "eval": ("cifar", "imagenet")}


def usage() -> str:
    width = max(map(len, TOOLS))
    lines = [
        "usage: pertnas TOOL [ARGS...]   (pertnas TOOL --help for its flags; pertnas --version)",
        "",
        __doc__.strip().splitlines()[0],
        "",
        "tools:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, _, text) in TOOLS.items()]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(usage())
        return
    if argv[0] == "--version":
        print(f"pertnas {nas.__version__}")
        return
    name, rest = argv[0], argv[1:]
    if name not in TOOLS:
        raise UserError(f"unknown tool {name!r}: expected one of {', '.join(TOOLS)} (pertnas --help)")
    module, kind, text = TOOLS[name]
    if kind == "bench":
        return bench(rest)
    if kind == "launch":
        if not rest or rest[0] not in LAUNCHED[name]:
            got = repr(rest[0]) if rest else "nothing"
            raise UserError(f"pertnas {name} {got}: expected one of {', '.join(LAUNCHED[name])}")
        return importlib.import_module(module).main(rest[0], f"pertnas {name} {rest[0]}: {text}", rest[1:])
    sys.argv[0] = f"pertnas {name}"  # argparse's prog in the tool's usage lines
    importlib.import_module(module).main(rest)


def bench(argv: list[str]) -> None:
    import runpy

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_all.py"
    if not script.is_file():
        raise UserError(f"{script} not found: the benchmarks run from a source checkout (pip install -e .)")
    sys.argv = [str(script), *argv]
    runpy.run_path(str(script), run_name="__main__")


def entry() -> None:
    """The console script."""
    run_cli(main)
