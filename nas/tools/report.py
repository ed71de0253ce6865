"""See a run:  python -m nas.report RUN_DIR|SWEEP_ROOT [--out FILE.html] [--figures DIR]

RUN_DIR (a search run directory): one HTML file with the final cell, the phase-1 scores, every
selection, how the cell narrowed, training, time and resources, and the configuration; an
unfinished run's report stops at its last decision. An evaluation run directory gets its own
report: loss and top-1 per epoch, the schedules, the best epoch, size, the cell, time per
epoch and the configuration (a resumed run drawn across its resume). SWEEP_ROOT (a directory holding runs):
the collector's table, the operation frequency of the final cells across seeds, the spread of
val_acc (and of NAS-Bench-301 with --nb301-models), and each run's own report, written as
report.html in its run directory and linked. Pictures are embedded, so the file opens offline;
--figures DIR also writes every figure as PNG and SVG. Default --out: report.html inside the
directory given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.core.errors import UserError
from nas.core.files import write_text
from nas.core.rundir import is_run_dir
from nas.report.evaluation import eval_report, read_eval_data
from nas.report.figures import Renderer
from nas.report.load import read_run_data
from nas.report.run import run_report
from nas.report.sweep import relative_link, sweep_report

REPORT = "report.html"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m nas.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "path", type=Path, help="a search or evaluation run directory, or a directory holding runs (a sweep)"
    )
    parser.add_argument("--out", type=Path, help=f"the HTML file (default: PATH/{REPORT})")
    parser.add_argument("--figures", type=Path, metavar="DIR", help="also write every figure as PNG and SVG into DIR")
    parser.add_argument(
        "--nb301-models",
        type=Path,
        metavar="DIR",
        help="sweeps: NAS-Bench-301 model directory, to add the surrogate's predictions",
    )
    args = parser.parse_args(argv)
    if not args.path.is_dir():
        raise UserError(f"{args.path} is not a directory: expected a search run directory or a sweep root")
    if args.out is not None and args.out.is_dir():
        raise UserError(f"--out {args.out} is a directory: expected an HTML file name")
    out = args.out or args.path / REPORT
    if is_run_dir(args.path):
        if args.nb301_models is not None:
            raise UserError(f"--nb301-models is for sweeps: expected a directory holding runs, not the run {args.path}")
        renderer = Renderer(svg=args.figures is not None)
        _write(out, report_of(args.path, renderer))
        renderers = [renderer]
    else:
        text, renderers = _sweep(args, out)
        _write(out, text)
    if args.figures is not None:
        for renderer in renderers:
            for path in renderer.write_files(args.figures):
                print(path)
    print(f"wrote {out}")


def _sweep(args, out: Path) -> tuple[str, list[Renderer]]:
    """The sweep's page and its figures; each run's report is written into its run directory first."""
    from nas.analysis.table import Collection

    collection = Collection(args.path)  # the root is searched once (a link loop is reported once)
    if not collection.runs:
        raise UserError(
            f"{args.path} is not a search run directory and holds none: expected config.yaml and "
            f"state.json, or search-<note>-<time>/ directories below it"
        )
    if args.nb301_models is not None:
        from nas.analysis.nb301 import Surrogate

        collection.add_predictions(Surrogate(args.nb301_models))
    svg = args.figures is not None
    renderers, written, failed = [], {}, {}
    for run in collection.runs:
        renderer = Renderer(svg=svg, prefix=collection.name(run).replace("/", "_") + "_")
        text = report_of(run.path, renderer, kind=run.kind)
        try:
            write_text(run.path / REPORT, text)
            written[run.path] = run.path / REPORT
        except OSError as exc:  # a read-only run: the sweep's page says so
            failed[run.path] = f"its report could not be written ({exc.strerror})"
        renderers.append(renderer)
    sweep_renderer = Renderer(svg=svg)
    text = sweep_report(
        collection,
        sweep_renderer,
        failed,
        lambda run_dir: relative_link(out, written[run_dir]) if run_dir in written else None,
    )
    return text, [sweep_renderer] + renderers


def report_of(run_dir: Path, renderer: Renderer, kind: str | None = None) -> str:
    """The page of one run: an evaluation's report or a search's."""
    from nas.analysis.runs import read_run

    if (kind or read_run(run_dir).kind) == "evaluation":
        return eval_report(read_eval_data(run_dir), renderer)
    return run_report(read_run_data(run_dir), renderer)


def _write(out: Path, text: str) -> None:
    try:
        write_text(out, text)
    except OSError as exc:
        raise UserError(
            f"cannot write {out}: {exc.strerror}; expected a writable path (pass --out FILE.html)"
        ) from None
