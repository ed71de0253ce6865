"""The DARTS search space: the candidate operations and the 14-edge numbering (primitives),
the operation modules, and the per-edge operation sets of a searched cell (switches)."""
