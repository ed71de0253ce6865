"""One self-contained HTML report per search run and per sweep (python -m nas.report)."""
