"""Configs are dataclasses; a YAML file (--config) and command-line flags override them.

Precedence: dataclass defaults < --preset (configs/<name>.yaml) < --config FILE < flags.
Every field is a flag in both spellings (--batch_size and --batch-size). Unknown keys and
wrong types in YAML are errors naming the key. Booleans take --flag / --no-flag.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, TypeVar

import yaml

from .errors import UserError

T = TypeVar("T")
PRESET_DIR = Path(__file__).resolve().parents[1] / "configs"


def option(default: Any, help: str, choices: Optional[Sequence[Any]] = None) -> Any:
    """A config field with its help text (and allowed values) for the flag."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def _base_type(tp) -> tuple[type, bool]:
    """(type, optional?) of a field annotation like `int`, `Optional[int]`, `int | None`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _coerce(name: str, value: Any, tp, choices) -> Any:
    base, optional = _base_type(tp)
    if base is tuple or typing.get_origin(base) is tuple:  # tuples of ints: YAML lists, flags with nargs
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise UserError(f"config key {name!r} = {value!r}: expected a list of integers")
        return tuple(value)
    if value is None:
        if optional:
            return None
        raise UserError(f"config key {name!r} is null: expected a {base.__name__}")
    ok = (isinstance(value, bool) if base is bool
          else isinstance(value, (int, float)) and not isinstance(value, bool) if base is float
          else isinstance(value, int) and not isinstance(value, bool) if base is int
          else isinstance(value, base))
    if not ok:
        raise UserError(f"config key {name!r} = {value!r} has type {type(value).__name__}: expected {base.__name__}")
    value = float(value) if base is float else value
    if choices and value not in choices:
        raise UserError(f"config key {name!r} = {value!r}: expected one of {list(choices)}")
    return value


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per field, both spellings; defaults are suppressed so that only given flags override."""
    parser.add_argument("--config", default=None, help="YAML file setting any of the flags below")
    parser.add_argument("--preset", default=None, help=f"a named config from {PRESET_DIR.name}/ (e.g. tiny)")
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        base, _ = _base_type(hints[f.name])
        names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        kwargs: dict = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if base is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
        elif base is tuple or typing.get_origin(base) is tuple:
            parser.add_argument(*names, type=int, nargs="+", **kwargs)
        else:
            parser.add_argument(*names, type=base, choices=f.metadata.get("choices"), **kwargs)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of flag names to values, got {type(data).__name__}")
    return data


def from_dict(cls: type[T], data: dict, base: Optional[T] = None, source: str = "config") -> T:
    """A config from `data` over `base` (or the defaults), checking keys and types.

    A config class may name sections (`SECTIONS`, e.g. one per search method): a YAML
    mapping under its own `SECTION` name applies to it, those of its siblings are skipped,
    so one file can configure both searches."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = dataclasses.asdict(base) if base is not None else {}
    for key, value in data.items():
        if key in getattr(cls, "SECTIONS", ()):
            if not isinstance(value, dict):
                raise UserError(f"section {key!r} in {source} must be a mapping, got {type(value).__name__}")
            if key == getattr(cls, "SECTION", None):
                values = dataclasses.asdict(from_dict(cls, value, cls(**values), f"{source} [{key}]"))
            continue
        name = key.replace("-", "_")
        if name not in fields:
            raise UserError(f"unknown key {key!r} in {source}: expected one of {sorted(fields)}")
        values[name] = _coerce(name, value, hints[name], fields[name].metadata.get("choices"))
    return cls(**values)


def parse(cls: type[T], argv: Optional[Sequence[str]] = None, description: str = "") -> tuple[T, dict]:
    """Parse flags into `cls`. Returns the config and the dict of explicitly given flags."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser, cls)
    ns = vars(parser.parse_args(argv))
    preset, config_file = ns.pop("preset"), ns.pop("config")
    cfg = cls()
    if preset is not None:
        path = PRESET_DIR / f"{preset}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
            raise UserError(f"unknown preset {preset!r}: expected one of {known}")
        cfg = from_dict(cls, load_yaml(path), cfg, source=str(path))
    if config_file is not None:
        cfg = from_dict(cls, load_yaml(config_file), cfg, source=config_file)
    cfg = from_dict(cls, ns, cfg, source="flags")
    return cfg, ns


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


@dataclass
class RunOptions:
    """Where and how any run (search or evaluation) runs; the scripts' configs extend it."""

    seed: int = option(1, "run seed; every step derives its own seed from it")
    save: str = option("runs", "directory under which the run directory is made")
    note: str = option("try", "note in the run directory's name")
    resume: Optional[str] = option(None, "continue the run in this run directory")
    distributed: bool = option(False, "make a process group even for one process (torchrun's several are always distributed)")
    cluster: str = option("local", "launcher: local (torchrun) or slurm (srun)", ("local", "slurm"))
    device: str = option("auto", "auto (CUDA when available), cuda or cpu", ("auto", "cuda", "cpu"))


# Options that may differ when a run is resumed: where and how it runs, not what it computes.
RUNTIME_KEYS = frozenset({"save", "note", "resume", "workers", "log_every", "cluster", "distributed", "device",
                          "progress"})
