"""NAS-Bench-301: a genotype as the surrogate's configuration dict (docs/method.md, "NAS-Bench-301"), and the query.

The dict holds only the architecture keys, exactly as nasbench301's own
`convert_genotype_to_config` writes them; `SurrogateAPI.predict` adds the fixed training
hyperparameters itself. Example (node 0 of the normal cell is ('sep_conv_3x3', 0),
('sep_conv_3x3', 1); node 3 takes inputs 0 and 2):

    "NetworkSelectorDatasetInfo:darts:edge_normal_0": "sep_conv_3x3",
    "NetworkSelectorDatasetInfo:darts:edge_normal_1": "sep_conv_3x3",
    ...
    "NetworkSelectorDatasetInfo:darts:inputs_node_normal_5": "0_2",
"""

from __future__ import annotations

from pathlib import Path

from nas.core.errors import UserError, install_extra
from nas.space import primitives as space

PREFIX = "NetworkSelectorDatasetInfo:darts:"
# Ensemble directories of the surrogate's model files, newest version first.
MODEL_DIRS = ("xgb_v1.0", "nb_models_1.0/xgb_v1.0", "xgb_v0.9", "nb_models_0.9/xgb_v0.9")
INSTALL_HINT = (
    f"install the nasbench301 package ({install_extra('nb301')}) and its model files "
    "(nb_models_1.0.zip, about 1.7 GB), then pass --models-dir"
)


def genotype_to_config(g) -> dict[str, str]:
    """The NB301 configuration of both cells of `g`; UserError for what NB301 cannot express."""
    config: dict[str, str] = {}
    for cell_type in ("normal", "reduce"):
        cell, concat = getattr(g, cell_type), getattr(g, f"{cell_type}_concat")
        if tuple(concat) != space.CONCAT:
            raise UserError(
                f"{cell_type}_concat={list(concat)}: NAS-Bench-301 always concatenates nodes {list(space.CONCAT)}"
            )
        for node in range(space.NUM_NODES):
            pairs = cell[2 * node : 2 * node + 2]
            for op, inp in pairs:
                if op not in space.PRIMITIVES:
                    raise UserError(
                        f"operation {op!r} in the {cell_type} cell, node {node}: NAS-Bench-301 knows only "
                        f"{', '.join(space.PRIMITIVES)}"
                    )
                config[f"{PREFIX}edge_{cell_type}_{space.edge_index(node, inp)}"] = op
            inputs = sorted(inp for _, inp in pairs)
            if inputs[0] == inputs[1]:
                raise UserError(
                    f"node {node} of the {cell_type} cell takes both inputs from node {inputs[0]} {tuple(pairs)}: "
                    f"NAS-Bench-301 needs two different inputs per node"
                )
            if node > 0:  # node 0 (DARTS node 2) always takes 0_1 and has no key
                config[f"{PREFIX}inputs_node_{cell_type}_{node + space.NUM_INPUTS}"] = f"{inputs[0]}_{inputs[1]}"
    return config


def find_model_dir(models_dir) -> Path:
    """The performance surrogate's ensemble directory inside `models_dir` (or `models_dir` itself)."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise UserError(f"--models-dir {models_dir} is not a directory: {INSTALL_HINT}")
    for name in MODEL_DIRS:
        if (models_dir / name).is_dir():
            return models_dir / name
    if any(models_dir.rglob("surrogate_model.model")):
        return models_dir
    raise UserError(
        f"--models-dir {models_dir} holds no NAS-Bench-301 performance model "
        f"(expected one of {', '.join(MODEL_DIRS)}, or surrogate_model.model files): {INSTALL_HINT}"
    )


class Surrogate:
    """The NB301 performance surrogate, loaded once and queried per genotype."""

    def __init__(self, models_dir):
        try:
            import nasbench301
        except ImportError as exc:
            raise UserError(f"cannot import nasbench301 ({exc}): {INSTALL_HINT}") from None
        model_dir = find_model_dir(models_dir)
        self.model_dir = model_dir
        self._api = nasbench301.load_ensemble(str(model_dir))

    def predict(self, g, with_noise: bool = False) -> float:
        """Predicted CIFAR-10 test accuracy (%), the ensemble mean unless `with_noise`."""
        config = genotype_to_config(g)
        return float(self._api.predict(config=config, representation="configspace", with_noise=with_noise))
