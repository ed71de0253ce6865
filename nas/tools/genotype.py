"""Genotype tools:  python -m nas.genotype {show,plot,nb301,convert,export} SPEC [--reduce SPEC2]
                    python -m nas.genotype sample --n N --seed S --out DIR [--one-cell]

SPEC is a library name (nas/genotype/library/), a .json file, a .txt/.py literal file (FILE:NAME), or
a search run directory. --reduce SPEC2 takes the reduction cell from SPEC2 (the paper's
pairing: best run's cell as normal, second best's as reduction).

export SPEC --out cell.py writes one Python file that builds the evaluation network with torch
alone; SPEC may also be an evaluation run directory or its checkpoint (the network it trained,
whose weights the file's load() reads), and --onnx FILE then writes the trained network as ONNX.

sample --n N --seed S --out DIR writes N distinct random cells of the DARTS space (the random-search
control), DIR/random_seed<S>_<i>.json, each a genotype JSON any evaluation script or tool takes;
--one-cell uses one cell for normal and reduction, as a search's genotype does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nas.core.config import SEED_MAX
from nas.core.errors import UserError
from nas.core.files import write_text
from nas.genotype import (
    Genotype,
    combine,
    distinct_cells,
    format_json,
    format_literal,
    genotype_from_dict,
    library_names,
    load_genotype,
    save_genotype,
)
from nas.genotype.sample import MAX_SAMPLES, sample_genotypes

# The published evaluation settings (docs/method.md, "Evaluation"): name, builder, C, layers, classes, input size.
EVAL_NETWORKS = (
    ("CIFAR-10", "NetworkCIFAR", 36, 20, 10, 32),
    ("ImageNet", "NetworkImageNet", 48, 14, 1000, 224),
)


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "export":
        export(args)
        return
    if args.command == "sample":
        sample(args)
        return
    g = load_genotype(args.spec)
    name = spec_name(args.spec)
    if args.reduce:
        g = combine(g, load_genotype(args.reduce))
        name = f"{name}+{spec_name(args.reduce)}"
    args.func(args, g, name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nas.genotype", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("spec", help=f"library name ({', '.join(library_names())}), .json/.txt file or run directory")
    common.add_argument("--reduce", metavar="SPEC2", help="take the reduction cell from SPEC2")

    p = sub.add_parser("show", parents=[common], help="the cells, and size and cost of the evaluation networks")
    p.set_defaults(func=show)
    p = sub.add_parser("plot", parents=[common], help="PNG and SVG diagrams of the cells")
    p.add_argument("--out", type=Path, default=Path("."), help="output directory (default: .)")
    p.add_argument("--name", help="file name prefix (default: from SPEC)")
    p.set_defaults(func=plot)
    p = sub.add_parser("nb301", parents=[common], help="the NAS-Bench-301 configuration as JSON")
    p.add_argument(
        "--one-cell",
        action="store_true",
        help="use SPEC's normal cell for both cells (how the paper queried NAS-Bench-301)",
    )
    p.set_defaults(func=nb301)
    p = sub.add_parser("convert", parents=[common], help="write the genotype as canonical JSON or the DARTS literal")
    p.add_argument("--to", choices=("json", "literal"), required=True)
    p.add_argument("--out", type=Path, help="output file (default: standard output)")
    p.set_defaults(func=convert)
    p = sub.add_parser(
        "export",
        parents=[common],
        help="a standalone torch-only file building the evaluation "
        "network (--out); the ONNX graph of an evaluation checkpoint (--onnx)",
    )
    p.add_argument("--out", type=Path, help="the Python file to write (e.g. cell.py)")
    p.add_argument("--onnx", type=Path, help="SPEC an evaluation run or checkpoint: write its trained network as ONNX")
    p.add_argument(
        "--network",
        choices=("cifar", "imagenet"),
        help="a genotype SPEC: which evaluation network (default cifar, at its published size)",
    )
    p.add_argument("--init_channels", type=int, help="a genotype SPEC: channels of the first cell")
    p.add_argument("--layers", type=int, help="a genotype SPEC: cells in the network")
    p.add_argument("--classes", type=int, help="a genotype SPEC: number of classes")
    p.add_argument(
        "--auxiliary",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a genotype SPEC: build the auxiliary head (its weights are in a checkpoint trained with it)",
    )
    p.set_defaults(func=None)
    # sample's values are checked by sample() itself: one line per bad value, nothing written
    p = sub.add_parser("sample", help="N distinct random cells of the DARTS space as genotype JSON files")
    p.add_argument("--n", help=f"how many cells (1 to {MAX_SAMPLES})")
    p.add_argument("--seed", help=f"seed of the draw (0 to {SEED_MAX})")
    p.add_argument("--out", help="directory for random_seed<S>_<i>.json (made if missing)")
    p.add_argument(
        "--one-cell", action="store_true", help="the same cell for normal and reduction, as a search's genotype"
    )
    return parser


def spec_name(spec: str) -> str:
    """A short name for output files: the library name, file stem, FILE:NAME's NAME, or directory name."""
    path = Path(spec)
    if not path.exists() and ":" in spec:
        return spec.rpartition(":")[2]
    return (path.stem if path.is_file() else path.resolve().name) or "genotype"


def show(args, g: Genotype, name: str) -> None:
    print(name)
    print(cells_text(g), end="")
    # the cell at once: counting the 224-px ImageNet network's MACs takes seconds on a CPU
    print("counting parameters and MACs of the evaluation networks ...", flush=True)
    from nas.evaluation import networks as eval_model
    from nas.evaluation.cost import count_macs, count_parameters_m

    for label, builder, C, layers, classes, size in EVAL_NETWORKS:
        model = getattr(eval_model, builder)(C, classes, layers, False, g)
        params, macs = count_parameters_m(model), count_macs(model, (1, 3, size, size))
        print(
            f"{label} network (C={C}, {layers} cells, {size}x{size}): {params:.2f} M parameters, {macs:.0f} M MACs",
            flush=True,
        )


def cells_text(g: Genotype) -> str:
    """Each cell node by node, inputs named as in the plots."""
    titles = {"cell": "cell (normal and reduction)", "normal": "normal cell", "reduce": "reduction cell"}
    lines = []
    for kind, cell, concat in distinct_cells(g):
        lines.append(f"{titles[kind]}, output = concat of nodes {', '.join(str(c - 2) for c in concat)}")
        for node in range(len(cell) // 2):
            inputs = ", ".join(f"{op} <- {node_label(j)}" for op, j in cell[2 * node : 2 * node + 2])
            lines.append(f"  node {node}: {inputs}")
    return "\n".join(lines) + "\n"


def node_label(j: int) -> str:
    return "c_{k-2}" if j == 0 else "c_{k-1}" if j == 1 else f"node {j - 2}"


def plot(args, g: Genotype, name: str) -> None:
    from nas.genotype.plot import plot_genotype

    name = args.name or name
    if "/" in name:
        raise UserError(f"--name {name!r}: expected a file name prefix without '/' (use --out for the directory)")
    for path in plot_genotype(g, args.out, name):
        print(path)


def nb301(args, g: Genotype, name: str) -> None:
    from nas.analysis.nb301 import genotype_to_config

    if args.one_cell:
        if args.reduce:
            raise UserError("--one-cell and --reduce exclude each other: expected one of them")
        g = Genotype(g.normal, g.normal_concat, g.normal, g.normal_concat)
    print(json.dumps(genotype_to_config(g), indent=2))


def convert(args, g: Genotype, name: str) -> None:
    text = format_json(g) if args.to == "json" else format_literal(g) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return
    try:
        write_text(args.out, text)
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror}") from None
    print(args.out)


def _count(flag: str, value, low: int, high: int) -> int:
    if value is None:
        raise UserError(f"sample: --{flag} is required: expected an integer from {low} to {high}")
    try:
        number = int(value, 10)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise UserError(f"--{flag} {value}: expected an integer from {low} to {high}")
    return number


def sample(args) -> None:
    """Write --n random cells drawn with --seed into --out; nothing is written unless every value is good."""
    n = _count("n", args.n, 1, MAX_SAMPLES)
    seed = _count("seed", args.seed, 0, SEED_MAX)
    if not args.out:
        raise UserError("sample: --out is required: expected a directory for the genotype files")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, expected a directory")
    paths = [out / f"random_seed{seed}_{i}.json" for i in range(1, n + 1)]
    taken = [p for p in paths if p.exists()]
    if taken:
        raise UserError(f"--out {out}: {taken[0].name} exists already: expected a directory without these cells")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for i, (path, g) in enumerate(zip(paths, sample_genotypes(n, seed, one_cell=args.one_cell)), 1):
            source = {"sampled": "uniform DARTS cell", "seed": seed, "index": i, "one_cell": args.one_cell}
            save_genotype(path, g, source=source)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {n} random cell{'s' if n > 1 else ''} to {out}/ (random_seed{seed}_1.json ...)")


SIZE_FLAGS = (
    ("network", "network"),
    ("init_channels", "C"),
    ("layers", "layers"),
    ("classes", "num_classes"),
    ("auxiliary", "auxiliary"),
)


def export(args) -> None:
    """The standalone file (--out) and/or the ONNX graph (--onnx) of SPEC's evaluation network."""
    from nas.evaluation.export import (
        PUBLISHED,
        checkpoint_of,
        export_onnx,
        read_checkpoint,
        settings_of_checkpoint,
        write_standalone,
    )

    if args.out is None and args.onnx is None:
        raise UserError("export: expected --out FILE.py, --onnx FILE.onnx, or both")
    given = {flag: getattr(args, flag) for flag, _ in SIZE_FLAGS if getattr(args, flag) is not None}
    for flag in ("init_channels", "layers", "classes"):
        if flag in given and given[flag] < 1:
            raise UserError(f"--{flag} {given[flag]}: expected 1 or more")
    ckpt_path = checkpoint_of(args.spec)
    if ckpt_path is not None:
        if given or args.reduce:
            flags = ", ".join(f"--{f}" for f in [*given, *(["reduce"] if args.reduce else [])])
            raise UserError(f"{flags}: {args.spec} is an evaluation checkpoint, whose network is fixed by the run")
        ckpt = read_checkpoint(ckpt_path)
        g, settings = genotype_from_dict(ckpt["genotype"]), settings_of_checkpoint(ckpt)
    else:
        if args.onnx is not None:
            raise UserError(
                f"--onnx: {args.spec} is a genotype, not a trained network: expected an evaluation run "
                f"directory or its checkpoints/model_best.pt"
            )
        g = load_genotype(args.spec)
        if args.reduce:
            g = combine(g, load_genotype(args.reduce))
        settings = dict(PUBLISHED[given.get("network", "cifar")])
        settings.update({key: given[flag] for flag, key in SIZE_FLAGS if flag in given})
        if settings["layers"] < 3:
            raise UserError(f"--layers {settings['layers']}: expected at least 3 (two of them are reduction cells)")
    if args.out is not None:
        write_standalone(args.out, g, settings, source=args.spec + (f" --reduce {args.reduce}" if args.reduce else ""))
        print(args.out)
    if args.onnx is not None:
        export_onnx(ckpt, args.onnx)
        print(args.onnx)
