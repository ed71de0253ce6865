"""HTML pieces of the reports: one self-contained page (styles inline, pictures as data: URIs)."""

from __future__ import annotations

import base64
import html
from typing import Iterable, Sequence

from nas.report.figures import Rendered
from nas.report.load import is_num

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 2em 3em; color: #222;
       max-width: 1500px; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-top: 0.6em; }
nav { position: sticky; top: 0; background: #fff; padding: 0.5em 0; border-bottom: 1px solid #ddd; z-index: 1; }
nav a { margin-right: 1em; text-decoration: none; color: #1f5fa8; }
.banner { padding: 0.6em 1em; border-radius: 4px; margin: 0.6em 0; }
.banner.control { background: #fde2c4; border: 1px solid #e08a2c; }
.finished { background: #e6f4e6; } .unfinished { background: #fff4d6; } .broken { background: #fbe3e3; }
.missing { color: #8a6d3b; font-style: italic; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.kept { background: #fde0dd; font-weight: bold; }
td.changed { background: #fff3b0; }
td.empty { color: #aaa; }
table.grid td { font-family: monospace; font-size: 0.9em; white-space: nowrap; }
pre { background: #f6f6f6; padding: 0.6em; white-space: pre-wrap; font-size: 0.85em; }
img.fig { max-width: 100%; display: block; margin: 0.5em 0; }
img.cell { max-width: min(100%, 760px); }
details { margin: 0.4em 0; }
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def num(value, digits: int = 2) -> str:
    """A number for a table cell; '-' when not recorded."""
    if not is_num(value):
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def img(figure: Rendered, alt: str, cls: str = "fig") -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return f'<img class="{cls}" id="fig-{esc(figure.name)}" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def table(headers: Sequence[str] | None, rows: Iterable[Sequence], cls: str = "") -> str:
    """Rows of cells; a cell is text (escaped) or a (html, css class) pair. No header row
    without headers (a key-value table)."""

    def cell(c) -> str:
        if isinstance(c, tuple):
            content, css = c
            return f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>"
        return f"<td>{esc(c)}</td>"

    head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "\n".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}">{head}<tbody>\n{body}\n</tbody></table>'


def numeric(value, digits: int = 2) -> tuple[str, str]:
    return esc(num(value, digits)), "num"


def config_table(config: dict, defaults: dict | None) -> str:
    """The run's configuration, one key a row beside its default; a value that differs from the
    default is highlighted, so what the run changed stands out of the full list."""

    def plain(value):
        return list(value) if isinstance(value, tuple) else value

    def text(value) -> str:
        return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    defaults = defaults or {}
    rows, changed = [], 0
    for key, value in config.items():
        differs = key in defaults and plain(defaults[key]) != plain(value)
        changed += differs
        rows.append(
            [key, (esc(text(value)), "changed" if differs else ""), text(defaults[key]) if key in defaults else "-"]
        )
    note = (
        f"<p>{changed} value(s) differ from the defaults (highlighted)</p>"
        if defaults
        else '<p class="missing">the defaults of this run\'s kind are unknown: nothing is highlighted</p>'
    )
    return note + table(("key", "value", "default"), rows, "config")


def details(summary: str, body: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def page(title: str, header: str, sections: list[tuple[str, str, str]]) -> str:
    """A whole document: the header, a navigation bar, then the (anchor, title, body) sections."""
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, _ in sections)
    body = "\n".join(section(a, t, b) for a, t, b in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{header}\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )
