"""Predict a genotype's CIFAR-10 accuracy with the NAS-Bench-301 surrogate (docs/method.md, "NAS-Bench-301").

    pertnas nb301 SPEC [--reduce SPEC2 | --one-cell] --models-dir DIR

Needs the nasbench301 package and its model files (DIR holds xgb_v1.0/ or nb_models_1.0/);
it never downloads them. SPEC's own two cells are queried (a search's genotype uses its one
cell for both); --one-cell uses SPEC's normal cell as the reduction cell too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.analysis.nb301 import Surrogate, genotype_to_config
from nas.genotype import Genotype, combine, load_genotype


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="library name, .json/.txt file or run directory")
    cells = parser.add_mutually_exclusive_group()
    cells.add_argument("--reduce", metavar="SPEC2", help="take the reduction cell from SPEC2")
    cells.add_argument("--one-cell", action="store_true", help="SPEC's normal cell as both cells")
    parser.add_argument("--models-dir", required=True, type=Path, help="directory with the NB301 model files")
    parser.add_argument("--with-noise", action="store_true", help="sample the ensemble's noise instead of its mean")
    args = parser.parse_args(argv)

    g = load_genotype(args.spec)
    if args.reduce:
        g = combine(g, load_genotype(args.reduce))
    elif args.one_cell:
        g = Genotype(g.normal, g.normal_concat, g.normal, g.normal_concat)
    genotype_to_config(g)  # refuse what NB301 cannot express before loading 1.7 GB of models
    surrogate = Surrogate(args.models_dir)
    accuracy = surrogate.predict(g, with_noise=args.with_noise)
    print(f"NAS-Bench-301 predicted CIFAR-10 accuracy: {accuracy:.2f} % ({surrogate.model_dir})")
