"""Reports of copied runs whose files, names and sweep folders were written by someone else:
every string from outside is escaped, the page runs no script (headless Chromium, with a marker
that would write the title), links stay paths, and figures show `$` as written."""

import json
import shutil
import subprocess
import tempfile

import pytest
import yaml

from nas.report import run as run_page
from nas.report import sweep as sweep_page
from nas.report.sweep import relative_link
from nas.tools.report import main
from tests.report.checks import check_page
from tests.report.fabricate import fabricate
from tests.report.test_report_eval import fabricate_eval

PWNED = "PWNED"
# markup that would run if a page put it in unescaped: it writes the marker into the title
MARKUP = f"<img src=x onerror=\"document.title='{PWNED}'\">"
SCHEME = f"javascript:document.title='{PWNED}'"
# in the browser: every link must be a file (or an anchor), not a script
LINK_CHECK = (
    "<script>window.addEventListener('load', () => { const bad = [...document.links].filter("
    "a => !['file:'].includes(new URL(a.href).protocol)).length; "
    "document.body.setAttribute('data-links', document.links.length + ' ' + bad); });</script>"
)


def hostile_sweep(root):
    """A sweep copied from someone else: markup in a sub-directory's name (a scheme), the run
    directory's name, the configuration, summary, state, decision names, stage tags, model ids
    and an evaluation's arch; `$` (mathtext) in names that figures show."""
    run = fabricate(root / SCHEME / f"search-{MARKUP.replace('/', '')}-1")
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "note": MARKUP, "train_path": MARKUP}))
    summary = json.loads((run / "summary.json").read_text())
    summary.update(device=MARKUP, gpu_model=MARKUP, val_protocol=MARKUP, dataset=MARKUP, data_label=MARKUP)
    (run / "summary.json").write_text(json.dumps(summary))
    decisions = json.loads((run / "decisions.json").read_text())
    decisions[3]["name"] = "fine_edge" + MARKUP + "$\\frac{a}{$"
    decisions[3]["selected"] = MARKUP
    decisions[14]["scores"] = {"$\\x" + MARKUP: v for v in decisions[14]["scores"].values()}
    (run / "decisions.json").write_text(json.dumps(decisions))
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "phase": MARKUP, MARKUP: MARKUP}))
    lines = (run / "stages.jsonl").read_text().splitlines()
    first = {**json.loads(lines[0]), "tag": "$\\frac{x}{" + MARKUP}
    (run / "stages.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    model = json.loads((run / "valuation" / "model0.json").read_text())
    (run / "valuation" / "model0.json").write_text(json.dumps({**model, "model": MARKUP + "$^$"}))
    evaluation = fabricate_eval(root / f"{MARKUP.replace('/', '')}$" / "eval-x-1")
    config = json.loads((evaluation / "config.yaml").read_text())
    (evaluation / "config.yaml").write_text(json.dumps({**config, "arch": MARKUP, "note": MARKUP}))
    return run, evaluation


def test_links_to_a_scheme_named_folder_stay_paths(tmp_path):
    link = relative_link(tmp_path / "report.html", tmp_path / SCHEME / "run" / "report.html")
    assert ":" not in link and link.startswith("javascript%3A")  # a path, percent-encoded


def test_reports_of_hostile_files_escape_every_string_and_draw_dollars(tmp_path):
    run, evaluation = hostile_sweep(tmp_path / "sweep")
    main([str(tmp_path / "sweep")])  # before: matplotlib's mathtext raised on the `$` names
    pages = {
        tmp_path / "sweep" / "report.html": sweep_page.SECTIONS,
        run / "report.html": run_page.SECTIONS,
        evaluation / "report.html": None,
    }
    for path, sections in pages.items():
        text = path.read_text()
        if sections:
            check_page(text, sections)
        assert "<img src=x" not in text and "onerror=" not in text.replace("onerror=&quot;", "")
        assert 'href="javascript:' not in text
    text = (run / "report.html").read_text()
    assert "status: finished" in text and text.count("&lt;img src=x onerror=&quot;document.title=&#x27;PWNED&#x27;") > 8


def chromium_dom(page) -> str:
    with tempfile.TemporaryDirectory() as profile:
        command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        command += ["--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom"]
        result = subprocess.run(command + [page.as_uri()], capture_output=True, text=True, timeout=180)
    assert "<title>" in result.stdout, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not on PATH (make setup installs it)")
def test_hostile_reports_run_no_script_in_chromium(tmp_path):
    control = tmp_path / "control.html"  # the marker works: unescaped, it writes the title
    control.write_text(f"<!DOCTYPE html><html><head><title>t</title></head><body>{MARKUP}</body></html>")
    assert f"<title>{PWNED}</title>" in chromium_dom(control)
    run, evaluation = hostile_sweep(tmp_path / "sweep")
    main([str(tmp_path / "sweep")])
    for path in (tmp_path / "sweep" / "report.html", run / "report.html", evaluation / "report.html"):
        checked = tmp_path / f"checked-{path.parent.name[:6]}.html"
        checked.write_text(path.read_text().replace("</body>", LINK_CHECK + "</body>"))
        dom = chromium_dom(checked)
        assert f"<title>{PWNED}</title>" not in dom, path
        assert ' 0"' in dom.split("data-links=", 1)[1][:20], path  # no link runs a script


def test_the_run_table_shows_control_characters_of_names_escaped(tmp_path, capsys):
    from nas.tools.runs import main as runs_main

    fabricate(tmp_path / "sweep" / "seed\x1b[2J\nfake | row" / "search-a-1")
    runs_main([str(tmp_path / "sweep")])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "search-a-1" in line)
    assert "\x1b" not in out and "seed\\x1b[2J\\nfake \\| row/search-a-1" in row
