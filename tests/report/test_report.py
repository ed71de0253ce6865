"""Reports of fabricated runs and sweeps (python -m nas.report): finished, unfinished, broken."""

import json
import sys

import pytest

from nas.core.errors import UserError
from nas.genotype import format_literal, load_genotype_file
from nas.report import run as run_page
from nas.report import sweep as sweep_page
from nas.report.page import esc
from nas.search.decisions import plan
from nas.tools.report import main
from tests.helpers import assert_one_line_error, run_script
from tests.report.checks import check_page
from tests.report.fabricate import fabricate


def report(path, *extra):
    out = path.parent / f"{path.name}.html"
    main([str(path), "--out", str(out), *map(str, extra)])
    return out.read_text()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = fabricate(tmp_path_factory.mktemp("finished") / "search-fin-20240101-000000")
    return run, report(run)


def test_finished_run_has_every_section_and_embedded_figure(finished):
    run, text = finished
    page = check_page(text, run_page.SECTIONS)
    figures = {
        "fig-cell",
        "fig-phase1_average",
        "fig-phase1_models",
        "fig-fine_selection",
        "fig-topology_selection",
        "fig-training",
        "fig-val_acc",
        "fig-time",
        "fig-ranks",
    }
    assert figures <= page.ids
    assert len(page.images) == len(figures)
    assert 'class="banner finished"' in text and 'id="problems"' not in text


def test_finished_run_numbers_match_the_json(finished):
    run, text = finished
    summary = json.loads((run / "summary.json").read_text())
    decisions = json.loads((run / "decisions.json").read_text())
    average = json.loads((run / "valuation" / "average.json").read_text())["matrix"]
    assert f">{summary['val_acc']:.4f}<" in text and f">{summary['gpu_hours']:.4f}<" in text
    assert ">1234.50<" in text and ">400.25<" in text and ">830.75<" in text
    assert "281 0" in text and "950 950" in text and "2048.5 2050.0" in text
    for row in average:
        for value in row:
            assert f">{value:.4f}<" in text
    fine = [d for d in decisions if d["name"].startswith("fine_edge")]
    assert len(fine) == 14
    for d in fine:
        row = text.split(f"<td>{d['name']}</td>", 1)[1].split("</tr>", 1)[0]
        assert " ".join(f"{op} {v:.4f}" for op, v in d["scores"].items()) in row
        assert f'<td class="kept">{d["selected"]}</td>' in row and f">{d['acc_before']:.4f}<" in row
    for d in decisions[-3:]:
        row = text.split(f"<td>{d['name']}</td>", 1)[1].split("</tr>", 1)[0]
        assert " ".join(f"edge {e} {v:.4f}" for e, v in d["scores"].items()) in row
        assert f'<td class="kept">{", ".join(map(str, d["kept_edges"]))}</td>' in row
    grid = text.split('<table class="grid">', 1)[1].split("</table>", 1)[0]
    assert grid.count("<tr>") == 1 + len(decisions)
    assert esc(format_literal(load_genotype_file(run / "genotype.json"))) in text
    assert "from stages.jsonl; 18 stages, 72 epoch records" in text


def test_unfinished_run_stops_at_its_last_decision_and_reads_old_logs(tmp_path):
    run = fabricate(tmp_path / "search-unf-20240101-000000", decisions=6, finished=False, stages=False)
    (run / "log_rank0.txt").write_text(
        "01/01 00:00:01 [rank 0] model0 edge0 epoch 1/2 lr 0.05 train loss 2.3000 top1 11.00\n"
        "01/01 00:00:02 [rank 0] model0 edge0 epoch 2/2 lr 0.001 train loss 2.1000 top1 19.50\n"
        "01/01 00:00:03 [rank 0] coarse epoch 1/2 lr 0.05 train loss 2.0000 top1 25.00\n"
    )
    text = report(run)
    check_page(text, run_page.SECTIONS)
    last = plan("coarse", 3)[5].name
    assert 'class="banner unfinished"' in text and f"up to its last decision, decision 6/18 ({last})" in text
    assert "no genotype yet" in text and 'id="fig-cell"' not in text
    assert "9 fine decision(s) not done yet" in text and 'id="fig-topology_selection"' not in text
    assert "from log_rank*.txt (this run predates stages.jsonl); 2 stages, 3 epoch records" in text
    assert "steps and peak memory per rank are recorded in summary.json" in text


def test_broken_run_says_what_is_missing(tmp_path):
    run = fabricate(tmp_path / "search-brk-20240101-000000")
    for name in ("summary.json", "decisions.json", "valuation/model1.json"):
        path = run / name
        path.write_text(path.read_text()[:40])  # truncated by a full disk or a kill
    (run / "stages.jsonl").write_text(
        '{"tag": "coarse", "epoch": 1, "epochs": 2, "rank": 0, "lr": 0.1, "loss": 2.0, "top1": 9.0}\n{"tag": "fi'
    )
    text = report(run)
    check_page(text, run_page.SECTIONS)
    assert 'class="banner broken"' in text
    problems = text.split('id="problems"', 1)[1].split("</ul>", 1)[0]
    for fragment in ("summary.json unreadable", "decisions.json unreadable", "valuation/model1.json unreadable"):
        assert fragment in problems
    assert 'id="fig-phase1_average"' in text and "<td>model 0</td>" in text and "<td>model 1</td>" not in text
    assert "1 epoch records" in text


def test_bad_paths_are_one_line_errors(tmp_path):
    assert_one_line_error(
        run_script(sys.executable, "-m", "nas.report", tmp_path / "nope"), f"{tmp_path / 'nope'} is not a directory"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is not a search run directory and holds none"):
        main([str(tmp_path / "empty")])
    run = fabricate(tmp_path / "search-x-20240101-000000", decisions=1, finished=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"cannot write .*file/r.html: "):
        main([str(run), "--out", str(tmp_path / "file" / "r.html")])
    with pytest.raises(UserError, match="is a directory: expected an HTML file name"):
        main([str(run), "--out", str(tmp_path)])
    with pytest.raises(UserError, match="--nb301-models is for sweeps"):
        main([str(run), "--nb301-models", str(tmp_path)])
    assert not list(tmp_path.rglob("*.html")) and not list(tmp_path.rglob(".*.tmp"))


def test_sweep_report_links_runs_counts_operations_and_writes_figures(tmp_path):
    root = tmp_path / "sweep"
    runs = [fabricate(root / f"seed{s}" / f"search-s{s}-20240101-000000", seed=s) for s in (1, 2)]
    fabricate(root / "seed3" / "search-s3-20240101-000000", seed=3, decisions=3, finished=False)
    text = report(root, "--figures", tmp_path / "figs")
    page = check_page(text, sweep_page.SECTIONS)
    assert "3 runs: 2 finished, 1 unfinished, 0 broken" in text
    # each run's report is linked from the table and from its section
    assert sorted(page.links) == sorted(
        2 * [f"sweep/seed{s}/search-s{s}-20240101-000000/report.html" for s in (1, 2, 3)]
    )
    for link in set(page.links):
        check_page((tmp_path / link).read_text(), run_page.SECTIONS)
    genotypes = [load_genotype_file(r / "genotype.json") for r in runs]
    freq = sweep_page.operation_frequency(
        genotypes,
        (
            "max_pool_3x3",
            "avg_pool_3x3",
            "skip_connect",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "dil_conv_3x3",
            "dil_conv_5x5",
        ),
    )
    assert freq.sum() == 8  # every final cell has 8 edges
    table = text.split('<table class="frequency">', 1)[1].split("</table>", 1)[0]
    for e, row in enumerate(freq):
        assert f"<tr><td>edge {e}</td>" + "".join(f'<td class="num">{v:.2f}</td>' for v in row) + "</tr>" in table
    accs = [json.loads((r / "summary.json").read_text())["val_acc"] for r in runs]
    assert f'<td>val_acc</td><td>2</td><td class="num">{sum(accs) / 2:.4f}</td>' in text
    written = {p.name for p in (tmp_path / "figs").iterdir()}
    assert {
        "operation_frequency.png",
        "operation_frequency.svg",
        "spread.svg",
        "seed1_search-s1-20240101-000000_fine_selection.svg",
        "seed1_search-s1-20240101-000000_cell.png",
    } <= written


def test_one_rank_run_has_no_one_bar_charts_and_marks_its_changed_configuration(tmp_path):
    run = fabricate(tmp_path / "search-one-20240101-000000", world_size=1)
    text = report(run)
    page = check_page(text, run_page.SECTIONS)
    assert "fig-ranks" not in page.ids  # one rank: the numbers are in the table
    assert "<td>steps phases 2-4 per rank</td>" in text and "phases2 4" not in text
    config = text.split('<table class="config">', 1)[1].split("</table>", 1)[0]
    assert '<tr><td>stage_epochs</td><td class="changed">2</td><td>5</td></tr>' in config
    assert "<tr><td>extra_ops</td><td>False</td><td>False</td></tr>" in config
    assert "3 value(s) differ from the defaults" in text  # seed, npop, stage_epochs


def test_peak_memory_per_process_of_a_rank_with_phase1_helpers(tmp_path):
    run = fabricate(tmp_path / "search-procs-20240101-000000", world_size=2)
    summary = json.loads((run / "summary.json").read_text())
    summary["peak_memory_mb_per_process"] = [[2048.5, 1900.0], [2050.0, 2001.5]]
    (run / "summary.json").write_text(json.dumps(summary))
    text = report(run)
    assert "<td>peak memory per process (MB)</td><td>rank 0: 2048.5 1900.0; rank 1: 2050.0 2001.5</td>" in text
