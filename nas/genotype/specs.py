"""Genotype specs: a library name (nas/genotype/library/<NAME>.json, shipped in the package), a .json
file, a .txt/.py literal file (FILE:NAME picks one of several), or a search run directory holding genotype.json."""

from __future__ import annotations

import json
from pathlib import Path

from nas.core.errors import UserError
from nas.core.files import package_folder, read_text
from nas.core.rundir import find_run_dirs, read_state
from nas.genotype.genotype import Genotype, genotype_from_dict, parse_literal_all, validate_genotype

LIBRARY_DIR = package_folder("nas.genotype", "library")


def library_names() -> list[str]:
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.json"))


def load_genotype(spec, allow_extra_ops: bool = True) -> Genotype:
    """Resolve a spec: library name, .json file, .txt/.py literal file (FILE:NAME), run directory."""
    if isinstance(spec, Genotype):
        return validate_genotype(spec, allow_extra_ops)
    spec = str(spec)
    path = Path(spec)
    if path.is_dir():
        return _load_run_dir(path, allow_extra_ops)
    if path.exists():
        return load_genotype_file(path, allow_extra_ops=allow_extra_ops)
    file_part, sep, name = spec.rpartition(":")
    if sep and Path(file_part).is_file() and name:
        return load_genotype_file(Path(file_part), name, allow_extra_ops)
    if spec in library_names():
        return load_genotype_file(LIBRARY_DIR / f"{spec}.json", allow_extra_ops=allow_extra_ops)
    if "/" in spec or path.suffix:
        raise UserError(f"genotype file or run directory {spec} does not exist")
    raise UserError(
        f"unknown genotype {spec!r}: expected a library name ({', '.join(library_names())}), "
        f"a .json/.txt file or a run directory"
    )


def load_genotype_file(path: Path, name: str | None = None, allow_extra_ops: bool = True) -> Genotype:
    """A .json genotype, or a .txt/.py literal file (`name` picks one when it holds several)."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read genotype file {path}: {exc.strerror if isinstance(exc, OSError) else exc}"
        ) from None
    try:
        if path.suffix == ".json":
            if name:
                raise UserError(f"{path}:{name}: a JSON file holds one genotype; drop ':{name}'")
            try:
                d = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UserError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
            return genotype_from_dict(d, allow_extra_ops)
        if path.suffix in (".txt", ".py"):
            named = parse_literal_all(text, allow_extra_ops)
            if name:
                if name not in named:
                    raise UserError(f"no genotype {name!r}: expected one of {', '.join(named)}")
                return named[name]
            if len(named) != 1:
                raise UserError(
                    f"holds {len(named)} genotypes: pick one as {path}:NAME, NAME one of {', '.join(named)}"
                )
            return next(iter(named.values()))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    raise UserError(f"genotype file {path} has suffix {path.suffix!r}: expected .json, .txt or .py")


def _load_run_dir(run_dir: Path, allow_extra_ops: bool) -> Genotype:
    if (run_dir / "genotype.json").is_file():
        return load_genotype_file(run_dir / "genotype.json", allow_extra_ops=allow_extra_ops)
    if not (run_dir / "state.json").exists() and not (run_dir / "config.yaml").exists():
        # A --save directory (e.g. a sweep's seed<S>/) holding one run: use that run.
        runs = find_run_dirs(run_dir)
        if len(runs) == 1:
            return _load_run_dir(runs[0], allow_extra_ops)
        if len(runs) > 1:
            raise UserError(
                f"directory {run_dir} holds {len(runs)} search runs: expected one of {', '.join(str(r) for r in runs)}"
            )
        raise UserError(
            f"directory {run_dir} has no genotype.json and is not a search run directory (no state.json, config.yaml)"
        )
    state = read_state(run_dir)
    if state is None:
        raise UserError(
            f"run directory {run_dir} has no genotype.json and no readable state.json: "
            f"the search is unfinished or broken"
        )
    if state.get("status") == "finished":
        raise UserError(
            f"run directory {run_dir} has no genotype.json although state.json says finished: the run is broken"
        )
    raise UserError(
        f"run directory {run_dir} has no genotype.json: the search is unfinished "
        f"(status {state.get('status', '?')}, phase {state.get('phase', '?')})"
    )
