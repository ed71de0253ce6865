"""The report of a real tiny search, checked against its JSON files and opened in headless Chromium."""

import json
import shutil
import subprocess
import sys

import pytest

from nas.report import run as run_page
from tests.helpers import run_script
from tests.report.checks import IMAGE_CHECK, check_page

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def search(finished_search, tmp_path_factory):
    run, _ = finished_search  # read only: the report goes elsewhere
    assert f"report: python -m nas.report {run}" in (run / "log_rank0.txt").read_text().splitlines()[-1]
    out_dir = tmp_path_factory.mktemp("report")
    out, figures = out_dir / "report.html", out_dir / "figures"
    result = run_script(sys.executable, "-m", "nas.report", run, "--out", out, "--figures", figures)
    assert result.returncode == 0, result.stderr[-2000:]
    return run, out, figures


def test_report_of_a_real_search_matches_its_files(search):
    run, out, figures = search
    text = out.read_text()
    page = check_page(text, run_page.SECTIONS)
    assert len(page.images) == 8 and 'class="banner finished"' in text  # one rank: no per-rank chart
    summary = json.loads((run / "summary.json").read_text())
    decisions = json.loads((run / "decisions.json").read_text())
    assert f">{summary['val_acc']:.4f}<" in text and f">{summary['wall_time_s']:.2f}<" in text
    assert "<tr><td>data set</td><td>digits</td></tr>" in text
    for d in decisions[1:]:
        row = text.split(f"<td>{d['name']}</td>", 1)[1].split("</tr>", 1)[0]
        assert f">{d['acc_before']:.4f}<" in row
    stages = (run / "stages.jsonl").read_text().splitlines()
    assert f"from stages.jsonl; 45 stages, {len(stages)} epoch records" in text  # 2 x 14 models' edges + 17 decisions
    assert {p.suffix for p in figures.iterdir()} == {".png", ".svg"} and len(list(figures.iterdir())) == 16


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH (make setup installs it)")
def test_report_renders_in_headless_chromium(search, tmp_path):
    _, out, _ = search
    checked = tmp_path / "checked.html"
    checked.write_text(out.read_text().replace("</body>", IMAGE_CHECK + "</body>"))
    chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
    dom = subprocess.run(chromium + ["--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=180)
    assert 'data-images="8 0"' in dom.stdout, dom.stderr[-2000:]
    shot = tmp_path / "report.png"
    subprocess.run(
        chromium + [f"--screenshot={shot}", "--window-size=1400,3000", out.as_uri()], capture_output=True, timeout=180
    )
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
