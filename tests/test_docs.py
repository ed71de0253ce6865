"""The README is the landing page; the rest is the MkDocs site under docs/ (`make docs`, run by `make test`)."""

import re

import yaml

from tests.helpers import ROOT


def test_readme_is_a_landing_page_with_the_quick_start():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", text, re.S).group(1)
    assert [line.split("#")[0].strip() for line in block.splitlines()] == ["make demo", "make test"]
    for link in re.findall(r"\]\((docs/[^)#]+)", text):  # every page it points to exists
        assert (ROOT / link).is_file(), link


def test_every_docs_page_is_in_the_site_and_make_test_builds_it():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["theme"]["font"] is False  # no font from the network: the site works offline
    listed = set()

    def walk(nav):
        for item in nav:
            for value in item.values() if isinstance(item, dict) else [item]:
                walk(value) if isinstance(value, list) else listed.add(value)

    walk(config["nav"])
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\bdocs\b", makefile, re.M) and "mkdocs build --strict" in makefile
