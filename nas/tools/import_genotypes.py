"""Write nas/genotype/library/<NAME>.json for every `NAME = Genotype(...)` of a Python-literal file.

pertnas import-genotypes ../shared/reference-genotypes.txt [--out genotypes]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.core.errors import UserError
from nas.genotype import LIBRARY_DIR, parse_literal_all, save_genotype


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("literal_file", type=Path, help="text with NAME = Genotype(...) lines")
    parser.add_argument(
        "--out", type=Path, default=LIBRARY_DIR, help="directory for the JSON files (default: the library)"
    )
    args = parser.parse_args(argv)
    try:
        text = args.literal_file.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {args.literal_file}: {exc.strerror}") from None
    try:
        named = parse_literal_all(text)
    except UserError as exc:
        raise UserError(f"{args.literal_file}: {exc}") from None
    if "" in named:
        raise UserError(f"{args.literal_file}: a Genotype(...) without a name: expected NAME = Genotype(...)")
    # Parse everything first, so a bad entry leaves the library untouched.
    for name, g in named.items():
        try:
            save_genotype(args.out / f"{name}.json", g)
        except OSError as exc:
            raise UserError(f"cannot write {args.out / f'{name}.json'}: {exc.strerror}") from None
        print(f"{args.out / f'{name}.json'}")
