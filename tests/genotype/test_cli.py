"""The genotype tool: plots, show, convert and its errors."""

import json
import sys
import xml.etree.ElementTree as ET

import pytest

from nas.core.errors import UserError
from nas.genotype import genotype_to_dict, library_names, load_genotype
from nas.tools.genotype import cells_text
from nas.tools.genotype import main as genotype_cli
from tests.helpers import assert_one_line_error, run_script

# --- plots, show, convert -----------------------------------------------------------------


SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name", library_names())
def test_plot_every_library_genotype(tmp_path, name, capsys):
    genotype_cli(["plot", name, "--out", str(tmp_path)])
    g = load_genotype(name)
    kinds = ["cell"] if g.normal == g.reduce else ["normal", "reduce"]
    expected = sorted(f"{name}_{k}.{fmt}" for k in kinds for fmt in ("png", "svg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    for kind in kinds:
        assert (tmp_path / f"{name}_{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = ET.fromstring((tmp_path / f"{name}_{kind}.svg").read_text())
        assert svg.tag == f"{SVG}svg"
        cell = g.normal if kind in ("cell", "normal") else g.reduce
        texts = sorted(t.text for t in svg.iter(f"{SVG}text"))
        assert texts == sorted(["c_{k-2}", "c_{k-1}", "c_{k}", "0", "1", "2", "3"] + [op for op, _ in cell])
        edges = [e for e in svg.iter(f"{SVG}g") if e.get("class") == "edge"]
        assert len(edges) == 12  # 8 labelled edges + 4 into c_{k}


def test_plot_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=f"cannot write {blocker}/out/DARTS_V2_normal.png"):
        genotype_cli(["plot", "DARTS_V2", "--out", str(blocker / "out")])


def test_show(capsys):
    genotype_cli(["show", "DARTS_V2"])
    out = capsys.readouterr().out
    assert "node 3: skip_connect <- c_{k-2}, dil_conv_3x3 <- node 0" in out
    assert "reduction cell" in out
    # the cell first, then a word that sizes are being counted, then the sizes
    assert out.index("node 3:") < out.index("counting parameters and MACs") < out.index("CIFAR-10 network")
    # docs/method.md, "Evaluation": DARTS_V2 is about 3.3 M on CIFAR-10 and 4.7 M on ImageNet.
    assert "CIFAR-10 network (C=36, 20 cells, 32x32): 3.35 M parameters" in out
    assert "ImageNet network (C=48, 14 cells, 224x224): 4.72 M parameters" in out
    assert cells_text(load_genotype("EVAL_BEST_SUPERNET")).splitlines() == [
        "cell (normal and reduction), output = concat of nodes 0, 1, 2, 3",
        "  node 0: skip_connect <- c_{k-2}, sep_conv_3x3 <- c_{k-1}",
        "  node 1: sep_conv_5x5 <- c_{k-2}, sep_conv_3x3 <- c_{k-1}",
        "  node 2: sep_conv_5x5 <- c_{k-2}, sep_conv_3x3 <- c_{k-1}",
        "  node 3: sep_conv_5x5 <- c_{k-2}, max_pool_3x3 <- c_{k-1}",
    ]


def test_convert(tmp_path, capsys):
    genotype_cli(["convert", "PDARTS", "--to", "literal", "--out", str(tmp_path / "p.txt")])
    assert capsys.readouterr().out == f"{tmp_path / 'p.txt'}\n"
    assert load_genotype(tmp_path / "p.txt") == load_genotype("PDARTS")
    genotype_cli(["convert", str(tmp_path / "p.txt"), "--to", "json"])
    assert json.loads(capsys.readouterr().out) == genotype_to_dict(load_genotype("PDARTS"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=f"cannot write {blocker}/x.json"):
        genotype_cli(["convert", "PDARTS", "--to", "json", "--out", str(blocker / "x.json")])


def test_cli_bad_spec():
    result = run_script(sys.executable, "-m", "nas.genotype", "show", "DARTS_V3")
    assert_one_line_error(result, "unknown genotype 'DARTS_V3': expected a library name (DARTS_V1, DARTS_V2")
