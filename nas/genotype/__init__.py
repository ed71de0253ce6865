"""Genotypes: the discrete cells a search outputs and the evaluation networks are built from.

A cell is 8 (op, input) pairs; pairs 2k and 2k+1 feed intermediate node k (0..3), inputs
in DARTS numbering (0, 1 = the cell inputs, 2.. = earlier intermediate nodes). JSON is the
canonical format; the DARTS Python-literal form is read by a safe parser (literal.py).

A *spec* names a genotype: a library name (nas/genotype/library/<NAME>.json), a .json file, a
.txt/.py file with the literal form (FILE:NAME picks one of several), or a search run
directory holding genotype.json.

The type and its formats are in genotype.py, the specs in specs.py; both are re-exported here.
"""

from nas.genotype.genotype import (
    FIELDS,
    PAIRS_PER_CELL,
    Genotype,
    combine,
    distinct_cells,
    format_json,
    format_literal,
    genotype_from_dict,
    genotype_from_switches,
    genotype_to_dict,
    make_genotype,
    parse_literal,
    parse_literal_all,
    save_genotype,
    validate_genotype,
)
from nas.genotype.specs import LIBRARY_DIR, library_names, load_genotype, load_genotype_file

__all__ = [
    "FIELDS",
    "PAIRS_PER_CELL",
    "Genotype",
    "combine",
    "format_json",
    "format_literal",
    "distinct_cells",
    "genotype_from_dict",
    "genotype_from_switches",
    "genotype_to_dict",
    "make_genotype",
    "parse_literal",
    "parse_literal_all",
    "save_genotype",
    "validate_genotype",
    "LIBRARY_DIR",
    "library_names",
    "load_genotype",
    "load_genotype_file",
]
