"""The toolkit from Python (a notebook, a script): a search, an evaluation, a finished run, its report.

    from nas import api

    result = api.search("evolutionary", preset="tiny", fast=True, train_path="data/digits", save="runs")
    result.genotype, result.run_dir, result.summary["val_acc"], len(result.decisions)
    trained = api.evaluate(result, network="cifar", data="data/digits", epochs=1, save="runs")
    api.report(result.run_dir)  # the HTML report, as `pertnas report`

The keyword arguments are the command lines' flags, with the same names (`preset` and `config`
included), parsed by the same typed configs: a bad value raises the `UserError` that the command
line prints as its one-line error, before any run directory is made. True and False stand for
--flag and --no-flag, a list or tuple for several values; None leaves a flag at its default.

A call leaves no process-wide state behind: the `nas` logger's handlers, the signal handlers,
the random generators (python, numpy, torch), torch's thread count and determinism settings, the
environment and any process group are as they were before it, so calls follow one another in one
process. The search and the evaluation run in this process; several processes (torchrun, SLURM)
start from the command lines (the documentation's pages "Searching" and "Distributed and SLURM").
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Union

import numpy as np
import torch

from nas.analysis.runs import read_run
from nas.core import distributed as D
from nas.core import stop
from nas.core.config import parse
from nas.core.errors import UserError
from nas.core.rundir import read_config
from nas.evaluation.launch import TASKS
from nas.evaluation.run import evaluation_run
from nas.genotype import Genotype
from nas.report.load import read_run_data
from nas.search.launch import run_search
from nas.search.registry import get_method
from nas.tools import report as report_tool

__all__ = ["SearchResult", "EvalResult", "search", "evaluate", "load_run", "report"]


@dataclass(frozen=True)
class SearchResult:
    """A finished search: its run directory and what it wrote there.

    Attributes:
        run_dir: the run directory, `<save>/search-<note>-<time>/`.
        genotype: the searched cells (genotype.json).
        summary: summary.json: method, seed, val_acc, wall time, peak memory, steps per rank.
        decisions: decisions.json: every decision of phases 2-4 with its scores.
        config: config.yaml: the resolved configuration.
    """

    run_dir: Path
    genotype: Genotype  # the searched cells (genotype.json)
    summary: dict  # summary.json: method, seed, val_acc, wall time, peak memory, ...
    decisions: list[dict] = field(default_factory=list)  # decisions.json: every decision of phases 2-4, its scores
    config: dict = field(default_factory=dict)  # config.yaml: the resolved configuration


@dataclass(frozen=True)
class EvalResult:
    """A finished evaluation (a cell trained from scratch): its run directory and summary.

    Attributes:
        run_dir: the run directory, `<save>/eval-<note>-<time>/`.
        genotype: the trained cells.
        summary: summary.json: best_top1, final_top1, params_m, macs_m, epochs, wall time.
        config: config.yaml: the resolved configuration.
    """

    run_dir: Path
    genotype: Genotype  # the trained cells
    summary: dict  # summary.json: best_top1, final_top1, params_m, macs_m, epochs, wall time, ...
    config: dict = field(default_factory=dict)  # config.yaml: the resolved configuration

    @property
    def best_top1(self) -> float:
        return self.summary["best_top1"]


def search(method: str, **flags: Any) -> SearchResult:
    """Run a search (`evolutionary` or `supernet`) with the flags of `search_<method>.py`; return its result.

    Example: `search("evolutionary", preset="tiny", fast=True, train_path="data/digits", seed=1)`.
    Raises UserError for a bad flag or input (nothing written then)."""
    config = get_method(method).config  # UserError for an unknown method
    with _isolated():
        cfg, given = parse(config, _argv(flags), description=f"api.search({method!r})")
        run = run_search(method, cfg, given)
        return _search_result(run.run_dir)


def evaluate(arch: Union[str, os.PathLike, SearchResult], network: str = "cifar", **flags: Any) -> EvalResult:
    """Train the cell `arch` from scratch with the flags of `train_eval_<network>.py`; return its result.

    `arch` is a genotype spec (a library name such as DARTS_V2, a .json file, a search run
    directory) or a SearchResult; `network` is "cifar" (CIFAR-10/100, 32 px) or "imagenet" (the
    mobile setting). Example: `evaluate("DARTS_V2", data="data/digits", epochs=1, init_channels=4)`."""
    if network not in TASKS:
        raise UserError(f"unknown network {network!r}: expected one of {', '.join(TASKS)}")
    if "arch" in flags:
        raise UserError("evaluate(arch, ...) takes the cell as its first argument, not as arch=")
    config, task = TASKS[network]
    spec = arch.run_dir if isinstance(arch, SearchResult) else arch
    with _isolated():
        cfg, given = parse(config, _argv({"arch": spec, **flags}), description=f"api.evaluate({network!r})")
        run_dir, _ = evaluation_run(cfg, given, task)
        return _eval_result(run_dir)


def load_run(path: Union[str, os.PathLike]) -> Union[SearchResult, EvalResult]:
    """A finished search or evaluation run directory as a SearchResult or an EvalResult.
    Raises UserError for a run that is unfinished or broken (saying why)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path} is not a directory: expected a finished search or evaluation run directory")
    info = read_run(path)
    if info.status != "finished":
        raise UserError(f"{path} is not a finished run ({info.status}: {info.reason or 'no summary.json'})")
    return _eval_result(path) if info.kind == "evaluation" else _search_result(path)


def report(path: Union[str, os.PathLike, SearchResult, EvalResult], out: Union[str, os.PathLike, None] = None) -> Path:
    """Write the HTML report of a run (or of a directory holding runs, a sweep), as `pertnas report`;
    return the file written (default: report.html inside the directory)."""
    path = path.run_dir if isinstance(path, (SearchResult, EvalResult)) else Path(path)
    argv = [str(path)] + (["--out", str(out)] if out is not None else [])
    with _isolated():
        report_tool.main(argv)
    return Path(out) if out is not None else path / report_tool.REPORT


# --- helpers ---------------------------------------------------------------------------------


def _argv(flags: dict) -> list[str]:
    """Keyword arguments as the command line's flags, so that the same parser checks them."""
    argv: list[str] = []
    for name, value in flags.items():
        flag = f"--{name}"
        if value is None:
            continue
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{name}")
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return argv


def _search_result(run_dir: Path) -> SearchResult:
    data = read_run_data(run_dir)
    if data.info.status != "finished" or data.info.genotype is None:
        raise UserError(f"search run {run_dir} is not finished ({data.info.reason or data.info.status})")
    return SearchResult(
        run_dir=Path(run_dir),
        genotype=data.info.genotype,
        summary=data.info.summary,
        decisions=data.decisions,
        config=data.config,
    )


def _eval_result(run_dir: Path) -> EvalResult:
    info = read_run(run_dir)
    if info.status != "finished" or info.genotype is None:
        raise UserError(f"evaluation run {run_dir} is not finished ({info.reason or info.status})")
    config = read_config(run_dir, f"evaluation run {run_dir}")
    return EvalResult(run_dir=Path(run_dir), genotype=info.genotype, summary=info.summary, config=config)


_SIGNALS = (*stop.SIGNALS, signal.SIGINT)


@contextlib.contextmanager
def _isolated() -> Iterator[None]:
    """Put back the process-wide state a run sets (see the module's docstring) when it ends, however it ends."""
    logger = logging.getLogger("nas")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    signals = {s: signal.getsignal(s) for s in _SIGNALS}
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    threads = torch.get_num_threads()
    determinism = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    environ = dict(os.environ)
    try:
        yield
    finally:
        D.cleanup()
        stop.disarm()
        for h in list(logger.handlers):
            logger.removeHandler(h)
            if h not in handlers:
                h.close()  # the run's log files
        for h in handlers:
            logger.addHandler(h)
        logger.setLevel(level)
        logger.propagate = propagate
        for s, handler in signals.items():
            if handler is not None:  # None: set from outside Python, which cannot be put back
                signal.signal(s, handler)
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(determinism[0], warn_only=determinism[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = determinism[2:]
        os.environ.clear()
        os.environ.update(environ)
