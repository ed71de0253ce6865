import os

import pytest

FAKE_NB301 = '''
"""Stand-in for the nasbench301 package: the API the query uses, a made-up score."""
from pathlib import Path

PREFIX = "NetworkSelectorDatasetInfo:darts:"


class _API:
    def predict(self, config, representation, with_noise=True):
        assert representation == "configspace" and len(config) == 22
        assert all(k.startswith(PREFIX) for k in config)
        return 95.0 - sum(v == "skip_connect" for v in config.values())


def load_ensemble(directory):
    assert Path(directory).name == "xgb_v1.0", directory
    return _API()
'''


@pytest.fixture
def fake_nb301(tmp_path):
    pkg = tmp_path / "fakepkg" / "nasbench301"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_NB301)
    models = tmp_path / "nb_models"
    (models / "xgb_v1.0").mkdir(parents=True)
    # prepended: the checkout's own PYTHONPATH (a worktree's nas) still comes first after it
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(pkg.parent), os.environ.get("PYTHONPATH")]))}, models
