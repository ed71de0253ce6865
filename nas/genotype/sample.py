"""Random cells of the DARTS space (`pertnas genotype sample`): the random-search control of
the searches, drawn under the rules a search's genotype obeys.

Each intermediate node takes two inputs from distinct earlier nodes (a 2-subset of its
sources, uniform, listed in increasing order as a search lists its kept edges) and one of
the seven DARTS operations on each, uniform ('none' is no operation of a genotype). With
`one_cell` the reduction cell is the normal cell, as in every genotype a search outputs;
else it is drawn on its own. The cells come from one seeded stream and are distinct.
"""

from __future__ import annotations

import random

from nas.core.seeding import derive_seed
from nas.genotype.genotype import Genotype, make_genotype
from nas.space import primitives as space

# the space holds about 10**16 cells (one cell): a duplicate is rare, a run of them impossible
MAX_SAMPLES = 10_000


def random_cell(rng: random.Random, ops=space.PRIMITIVES) -> tuple:
    cell = []
    for node in range(space.NUM_NODES):
        for source in sorted(rng.sample(range(space.NUM_INPUTS + node), 2)):
            cell.append((rng.choice(ops), source))
    return tuple(cell)


def sample_genotypes(n: int, seed: int, *, one_cell: bool) -> list[Genotype]:
    """`n` distinct random genotypes; the first k of them are the same for any n >= k."""
    rng = random.Random(derive_seed(seed, "genotype-sample", "one-cell" if one_cell else "two-cells"))
    out: list[Genotype] = []
    seen: set[Genotype] = set()
    while len(out) < n:
        normal = random_cell(rng)
        reduce = normal if one_cell else random_cell(rng)
        g = make_genotype(normal, space.CONCAT, reduce, space.CONCAT, allow_extra_ops=False)
        if g not in seen:
            seen.add(g)
            out.append(g)
    return out
