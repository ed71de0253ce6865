"""Runs side by side: searches grouped by method and control, evaluations counted for the cell
beside them, random cells a group of their own (pertnas runs, the sweep report)."""

import json

from nas.analysis.table import RANDOM_CELLS, Collection, group_lines
from nas.genotype import genotype_to_dict, save_genotype
from nas.genotype.sample import sample_genotypes
from nas.report import figures as F
from nas.report.sweep import sweep_report
from nas.tools.runs import main as runs_cli

CELLS = sample_genotypes(9, 3, one_cell=True)


def search(root, group, seed, genotype, val_acc, *, method="evolutionary", scores=None):
    run = root / group / f"seed{seed}" / f"search-{group}-2024010{seed}-000000"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"seed: {seed}\nmethod: {method}\n" + (f"scores: {scores}\n" if scores else ""))
    (run / "state.json").write_text(json.dumps({"status": "finished", "phase": "done"}))
    save_genotype(run / "genotype.json", genotype)
    summary = {"status": "finished", "method": method, "seed": seed, "val_acc": val_acc}
    (run / "summary.json").write_text(json.dumps({**summary, "genotype": genotype_to_dict(genotype)}))
    return run


def evaluation(directory, name, genotype, best_top1):
    run = directory / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("eval_task: cifar\narch: some/path\nseed: 0\nepochs: 4\n")
    save_genotype(run / "genotype.json", genotype)
    (run / "state.json").write_text(json.dumps({"status": "finished", "eval_task": "cifar"}))
    summary = {"status": "finished", "eval_task": "cifar", "best_top1": best_top1, "epochs": 4}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def study(root):
    for seed, acc in ((2, 71.0), (1, 80.0), (3, 75.0)):
        run = search(root, "evolutionary", seed, CELLS[seed], acc)
        evaluation(run.parent, "eval-study-20240102-000000", CELLS[seed], 60.0 + seed)
    for seed, acc in ((1, 50.0), (2, 60.0)):
        run = search(root, "random-scores", seed, CELLS[3 + seed], acc, scores="random")
        evaluation(run.parent, "eval-study-20240102-000000", CELLS[3 + seed], 40.0 + seed)
    search(root, "supernet", 1, CELLS[6], 77.0, method="supernet")  # one seed, no evaluation
    cells = root / "random-cells"
    cells.mkdir()
    for i, g in enumerate(CELLS[7:9], 1):
        save_genotype(
            cells / f"random_seed1_{i}.json", g, source={"sampled": "uniform DARTS cell", "seed": 1, "index": i}
        )
        evaluation(cells, f"eval-cell{i}-20240102-000000", g, 30.0 + i)
    save_genotype(cells / "other.json", CELLS[0])  # not sampled: its evaluation belongs to no group
    evaluation(cells, "eval-other-20240102-000000", CELLS[0], 99.0)


def test_groups_put_each_seed_and_its_evaluation_side_by_side(tmp_path):
    study(tmp_path)
    collection = Collection(tmp_path)
    groups = {g.name: g for g in collection.groups()}
    assert list(groups) == [
        "evolutionary",
        "evolutionary, random scores (control)",
        "supernet",
        RANDOM_CELLS,
    ]
    evo, control, supernet, cells = groups.values()
    assert [p.label for p in evo.points] == ["seed 1", "seed 2", "seed 3"]
    assert evo.values("val_acc") == [80.0, 71.0, 75.0] and evo.values("top1") == [61.0, 62.0, 63.0]
    assert control.control and not evo.control
    assert control.values("val_acc") == [50.0, 60.0] and control.values("top1") == [41.0, 42.0]
    assert supernet.values("val_acc") == [77.0] and supernet.values("top1") == []
    assert cells.control and [p.label for p in cells.points] == ["cell 1 (sample seed 1)", "cell 2 (sample seed 1)"]
    assert cells.values("top1") == [31.0, 32.0]  # the unsampled cell's 99.0 counts nowhere
    lines = group_lines(collection.groups())
    assert lines[0] == (
        "evolutionary: 3 seeds; val_acc median 75.00 % (min 71.00, max 80.00); "
        "best top-1 of the evaluated cells median 62.00 % (min 61.00, max 63.00)"
    )
    assert lines[1].startswith("evolutionary, random scores (control) [control]: 2 seeds; val_acc median 55.00 %")
    assert lines[2] == "supernet: 1 seed; val_acc 77.00 % (one seed only: no spread)"
    assert lines[3].startswith(f"{RANDOM_CELLS} [control]: 2 cells; best top-1 of the evaluated cells median 31.50")


def test_the_run_table_groups_searches_by_method_and_control(tmp_path, capsys):
    study(tmp_path)
    runs_cli([str(tmp_path)])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "search-" in line]
    methods = [row.split(" | ")[2] for row in rows]
    assert methods == ["evolutionary"] * 3 + ["evolutionary, random scores (control)"] * 2 + ["supernet"]
    assert "groups (finished runs, by method and control)" in out
    assert "- supernet: 1 seed; val_acc 77.00 % (one seed only: no spread)" in out


def test_the_sweep_report_draws_each_group(tmp_path):
    study(tmp_path)
    renderer = F.Renderer(svg=False)
    text = sweep_report(Collection(tmp_path), renderer, {}, lambda run_dir: None)
    assert 'id="fig-groups"' in text and "groups" in [r.name for r in renderer.rendered]
    section = text.split('<table class="groups">', 1)[1].split("</table>", 1)[0]
    assert "<td>evolutionary, random scores (control) [control]</td>" in section
    assert "1 (one seed only: no spread)" in section
    assert '<td class="num">61.00 62.00 63.00</td>' in section
    spread = text.split('<table class="spread">', 1)[1].split("</table>", 1)[0]  # the method and its control apart
    assert "<td>val_acc (evolutionary)</td><td>3</td>" in spread
    assert "<td>val_acc (evolutionary, random scores (control))</td><td>2</td>" in spread
