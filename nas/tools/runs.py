"""Tables of the search and evaluation runs under ROOT, and the paper's top-2 genotype pair.

    pertnas runs ROOT [--csv runs.csv] [--top 2 --out pair.json] [--nb301-models DIR]

Prints a Markdown table of the searches (run, seed, method and control, val_acc, genotype,
parameters of the CIFAR-10 evaluation network the cell implies, search time, GPU-hours, status,
NAS-Bench-301 prediction with --nb301-models), grouped by method and control (--scores random),
then one of the evaluations (run, seed, arch, data set, best and final top-1, final top-5, epochs
done/planned, the parameters and MACs the run trained, time, GPU-hours, status), then the groups
side by side: each one's seeds' val_acc and the best top-1 of the evaluations of their cells
beside them (median, min, max; the random cells of `genotype sample` are a group of their own).
--csv FILE writes the searches to FILE and the evaluations to FILE_evaluations.csv beside it.
--top K ranks the finished runs by the NB301 prediction when a surrogate is given, else by
val_acc in summary.json, and writes normal = best cell, reduction = second best's as one
genotype JSON (train_eval_cifar.py --arch PATH, python -m nas.genotype show PATH).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.analysis.table import EVAL_COLUMNS, EVAL_HEADERS, Collection, csv_text, group_lines, markdown
from nas.core.errors import UserError
from nas.core.files import write_text
from nas.genotype import save_genotype


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "root", type=Path, help="directory holding search and evaluation run directories (at any depth)"
    )
    parser.add_argument(
        "--csv",
        type=Path,
        help="also write the searches as CSV to this file and the evaluations to FILE_evaluations.csv",
    )
    parser.add_argument(
        "--top", type=int, help="rank the finished runs, show the best K (K >= 2), write the top-2 pair"
    )
    parser.add_argument("--out", type=Path, help="with --top: the pair's genotype JSON")
    parser.add_argument("--nb301-models", type=Path, help="NAS-Bench-301 model directory: query every genotype")
    args = parser.parse_args(argv)
    if args.top is not None and (args.top < 2 or args.out is None):
        raise UserError(f"--top {args.top}: expected K >= 2 together with --out PATH for the pair")
    if args.out is not None and args.top is None:
        raise UserError("--out is the top-2 pair's file: expected --top 2 with it")

    surrogate = None
    if args.nb301_models is not None:
        from nas.analysis.nb301 import Surrogate

        surrogate = Surrogate(args.nb301_models)
    collection = Collection(args.root, surrogate)
    if not collection.runs:
        raise UserError(
            f"no run directories under {args.root}: expected search-<note>-<time>/ or eval-<note>-<time>/ directories"
        )
    rows, eval_rows = collection.rows(), collection.eval_rows()
    # Rank first, so a failing --top leaves no CSV behind either.
    pair = collection.top_pair() if args.top is not None else None

    tables = []
    if rows:
        tables.append(f"searches ({len(rows)})\n\n" + markdown(rows))
    if eval_rows:
        tables.append(f"evaluations ({len(eval_rows)})\n\n" + markdown(eval_rows, EVAL_COLUMNS, EVAL_HEADERS))
    groups = collection.groups()
    if groups:  # side by side: the method, its controls, random cells
        tables.append(
            "groups (finished runs, by method and control)\n\n" + "".join(f"- {g}\n" for g in group_lines(groups))
        )
    print("\n".join(tables), end="")
    if args.csv is not None:
        eval_csv = args.csv.with_name(f"{args.csv.stem}_evaluations.csv")
        for path, text in (
            (args.csv, rows and csv_text(rows)),
            (eval_csv, eval_rows and csv_text(eval_rows, EVAL_COLUMNS)),
        ):
            if text:
                _write(path, lambda path=path, text=text: write_text(path, text))
                print(f"\nwrote {path}")
    if pair is not None:
        ranked, ranked_by = collection.top(args.top)
        print(f"\ntop {args.top} finished runs by {ranked_by}:")
        for i, (run, score) in enumerate(ranked, 1):
            print(f"  {i}. {collection.name(run)}  {score:.2f}")
        g, source, _ = pair
        _write(args.out, lambda: save_genotype(args.out, g, source=source))
        print(f"wrote {args.out}: normal cell of {source['normal']}, reduction cell of {source['reduce']}")


def _write(path: Path, write) -> None:
    try:
        write()
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
