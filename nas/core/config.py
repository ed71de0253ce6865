"""Configs are dataclasses; a YAML file (--config) and command-line flags override them.

Precedence: dataclass defaults < --preset (nas/configs/<name>.yaml, shipped in the package) < --config FILE < flags.
Every field is a flag in both spellings (--batch_size and --batch-size). Unknown keys, wrong
types and values out of range are errors naming the key, in YAML and flags alike, and are
found before anything runs. Booleans take --flag / --no-flag.

A config class may keep old keys as aliases (`ALIASES`): an old flag or YAML key sets another
field, so old command lines, files and the config.yaml of old run directories still work.

A YAML file may hold sections: a config class answers to the `SECTION` names along its
class hierarchy (`search:` and `evolutionary:` for the evolutionary search) and skips the
other mappings, the sections of other scripts, so one file (or preset) can configure them all.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import types
import typing
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar

import yaml

from nas.core.errors import UserError
from nas.core.files import package_folder, read_yaml

T = TypeVar("T")
SEED_MAX = 2**31 - 1  # what every generator seeded from a run seed accepts (numpy's take < 2**32)
PRESET_DIR = package_folder("nas", "configs")  # the presets ship inside the package


def option(
    default: Any,
    help: str,
    choices: Optional[Sequence[Any]] = None,
    *,
    runtime: bool = False,
    low: Optional[float] = None,
    high: Optional[float] = None,
    above: Optional[float] = None,
) -> Any:
    """A config field with its help text, allowed values, or range: [low, high], or above `above`
    (for a tuple: every element). A `runtime` option says where or how a run runs, not what it
    computes, so it may be given anew when the run resumes."""
    return dataclasses.field(
        default=default,
        metadata={"help": help, "choices": choices, "runtime": runtime, "low": low, "high": high, "above": above},
    )


@dataclass(frozen=True)
class Alias:
    """An old key of type `type`: its value v sets the field and value `to(v)` instead."""

    type: type
    help: str
    to: Callable[[Any], tuple[str, Any]]


def _aliases(cls) -> dict[str, Alias]:
    return getattr(cls, "ALIASES", {})


def upgrade(cls, data: dict, source: str = "config") -> dict:
    """A flat `data` (flags, a run's saved config) with `cls`'s aliases replaced by their fields."""
    return {name: value for name, value, _ in applicable(cls, data, source)}


def runtime_keys(cls) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if f.metadata.get("runtime"))


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def mismatched_keys(cls, saved: dict, given: dict) -> list[str]:
    """Explicitly given flags that differ from a saved run's configuration (runtime options may)."""
    runtime = runtime_keys(cls)
    return sorted(k for k, v in given.items() if k not in runtime and k in saved and _plain(saved[k]) != _plain(v))


def resume_config(cls: type[T], saved: dict, given: dict, *, what: str, source: str, keep: Sequence[str] = ()) -> T:
    """The saved run's own configuration, with the runtime options given now (less `keep`, which
    the caller compares itself); any other differing flag is refused."""
    saved = upgrade(cls, saved, source)
    bad = mismatched_keys(cls, saved, given)
    if bad:
        sources = getattr(given, "sources", {})

        def differs(k: str) -> str:
            via = f" from {sources[k]}" if sources.get(k, "flags") != "flags" else ""
            return f"--{k} {_show(given[k])}{via} (run has {_show(saved[k])})"

        raise UserError(
            f"{what}: {', '.join(differs(k) for k in bad)}: a run continues with its own configuration "
            f"(only options that say where or how it runs may change: {', '.join(sorted(runtime_keys(cls)))})"
        )
    runtime = runtime_keys(cls) - set(keep)
    cfg = from_dict(cls, {**saved, **{k: v for k, v in given.items() if k in runtime}}, source=source)
    check(cfg)
    return cfg


def _base_type(tp) -> tuple[type, bool]:
    """(type, optional?) of a field annotation like `int`, `Optional[int]`, `int | None`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _check_range(name: str, value: Any, meta) -> None:
    """Every number of a config is finite (no option means anything by inf or NaN) and in the
    field's range."""
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    for v in value if isinstance(value, tuple) else (value,):
        if v is None or isinstance(v, (str, bool)):
            continue
        if (
            (low is not None and v < low)
            or (high is not None and v > high)
            or (above is not None and v <= above)
            or not math.isfinite(v)
        ):
            expected = (
                f"more than {_num(above)}"
                if above is not None
                else f"a number from {_num(low)} to {_num(high)}"
                if low is not None and high is not None
                else f"{_num(low)} or more"
                if low is not None
                else f"{_num(high)} or less"
                if high is not None
                else "a finite number"
            )
            if math.isinf(v) and high is None:  # inf is within any bound below
                expected = f"a finite number {expected}" if above is not None else f"a finite number, {expected}"
            raise UserError(f"--{name} {_show(value)}: expected {expected}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"  # 2147483647, not 2.14748e+09


def _show(value) -> str:
    return " ".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)


def _coerce(name: str, value: Any, tp, meta) -> Any:
    value = _coerce_type(name, value, tp, meta.get("choices"))
    _check_range(name, value, meta)
    return value


def _coerce_type(name: str, value: Any, tp, choices) -> Any:
    base, optional = _base_type(tp)
    if base is tuple or typing.get_origin(base) is tuple:  # tuples of ints: YAML lists, flags with nargs
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise UserError(f"config key {name!r} = {value!r}: expected a list of integers")
        return tuple(value)
    if value is None:
        if optional:
            return None
        raise UserError(f"config key {name!r} is null: expected a {base.__name__}")
    ok = (
        isinstance(value, bool)
        if base is bool
        else isinstance(value, (int, float)) and not isinstance(value, bool)
        if base is float
        else isinstance(value, int) and not isinstance(value, bool)
        if base is int
        else isinstance(value, base)
    )
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
    parser.add_argument("--preset", default=None, help="a named config of nas/configs/ (e.g. tiny)")
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
    for name, alias in _aliases(cls).items():
        kwargs = dict(dest=name, default=argparse.SUPPRESS, help=alias.help)
        names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if alias.type is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            parser.add_argument(*names, type=alias.type, **kwargs)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"config file {path} does not exist")
    try:
        data = read_yaml(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc
        raise UserError(f"config file {path} is unreadable: {reason}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of flag names to values, got {type(data).__name__}")
    return data


def _own_sections(cls) -> list[str]:
    return [c.__dict__["SECTION"] for c in reversed(cls.__mro__) if "SECTION" in c.__dict__]


def applicable(cls, data: dict, source: str = "config") -> list[tuple[str, Any, str]]:
    """The (field, value, where) settings of `data` that apply to `cls`, in order: top-level keys,
    then the keys of each of its own sections. A mapping under any other name is another
    script's section (no option takes a mapping) and is skipped. An alias gives the field
    and value it stands for."""
    out, own, aliases = [], _own_sections(cls), _aliases(cls)
    for key, value in data.items():
        if key in own and not isinstance(value, dict):
            raise UserError(f"section {key!r} in {source} must be a mapping, got {type(value).__name__}")
        if isinstance(value, dict):
            continue
        key = key.replace("-", "_")
        if key in aliases:
            key, value = aliases[key].to(_coerce_type(key, value, aliases[key].type, None))
        out.append((key, value, source))
    for section in own:
        if isinstance(data.get(section), dict):
            out.extend(
                applicable(cls, {k: v for k, v in data[section].items() if k not in own}, f"{source} [{section}]")
            )
    return out


def from_dict(cls: type[T], data: dict, base: Optional[T] = None, source: str = "config") -> T:
    """A config from `data` over `base` (or the defaults), checking keys, types and ranges."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = dataclasses.asdict(base) if base is not None else {}
    for name, value, where in applicable(cls, data, source):
        if name not in fields:
            raise UserError(f"unknown key {name!r} in {where}: expected one of {sorted(fields)}")
        values[name] = _coerce(name, value, hints[name], fields[name].metadata)
    return cls(**values)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # argparse prints usage and the error on two lines; ours is one line, exit 2, like every bad input
        raise UserError(f"{message} (see --help)")


def parse(cls: type[T], argv: Optional[Sequence[str]] = None, description: str = "") -> tuple[T, dict]:
    """Parse flags into `cls`. Returns the config and the dict of explicitly given settings
    (from --preset, --config and flags), which a resumed run compares with its own."""
    parser = _Parser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser, cls)
    ns = vars(parser.parse_args(argv))
    preset, config_file = ns.pop("preset"), ns.pop("config")
    cfg, given_keys, sources = cls(), [], {}
    if preset is not None:
        path = PRESET_DIR / f"{preset}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
            raise UserError(f"unknown preset {preset!r}: expected one of {known}")
        data = load_yaml(path)
        cfg = from_dict(cls, data, cfg, source=str(path))
        given_keys += [k for k, _, _ in applicable(cls, data)]
        sources.update((k, f"--preset {preset}") for k, _, _ in applicable(cls, data))
    if config_file is not None:
        data = load_yaml(config_file)
        cfg = from_dict(cls, data, cfg, source=config_file)
        given_keys += [k for k, _, _ in applicable(cls, data)]
        sources.update((k, f"--config {config_file}") for k, _, _ in applicable(cls, data))
    cfg = from_dict(cls, ns, cfg, source="flags")
    check(cfg)
    given_keys += [k for k, _, _ in applicable(cls, ns)]
    sources.update((k, "flags") for k, _, _ in applicable(cls, ns))
    return cfg, Given({k: getattr(cfg, k) for k in dict.fromkeys(given_keys)}, sources)


class Given(dict):
    """The explicitly given settings, and where each came from: "flags", "--preset NAME" or
    "--config FILE" (a refused resume names it)."""

    def __init__(self, values: dict, sources: dict):
        super().__init__(values)
        self.sources = sources


def check(cfg) -> None:
    """Rules between options (each config class's `check`), after every source is applied."""
    if hasattr(cfg, "check"):
        cfg.check()


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


@dataclass
class RunOptions:
    """Where and how any run (search or evaluation) runs, and the options every run trains with
    alike; the scripts' configs extend it."""

    seed: int = option(1, "run seed; every step derives its own seed from it", low=0, high=SEED_MAX)
    save: str = option("runs", "directory under which the run directory is made", runtime=True)
    note: str = option("try", "note in the run directory's name", runtime=True)
    resume: Optional[str] = option(None, "continue the run in this run directory", runtime=True)
    distributed: bool = option(
        False, "make a process group even for one process (torchrun's several are always distributed)", runtime=True
    )
    cluster: str = option("local", "launcher: local (torchrun) or slurm (srun)", ("local", "slurm"), runtime=True)
    device: str = option("auto", "auto (CUDA when available), cuda or cpu", ("auto", "cuda", "cpu"), runtime=True)
    workers: int = option(8, "data loading workers per process", runtime=True, low=0)
    train_subset: Optional[int] = option(None, "train on only this many training images (smoke runs)", low=1)
    momentum: float = option(0.9, "SGD momentum", low=0, high=1)
    channels_last: bool = option(True, "channels-last memory format")
    progress: bool = option(
        True, "progress: bars on a terminal; redirected, a log line with the ETA every --log_every steps", runtime=True
    )

    requeue: bool = option(
        False,
        "inside a SLURM job: after a clean stop on SIGTERM or SIGUSR1, requeue the job (scontrol requeue)",
        runtime=True,
    )

    def check(self) -> None:
        check_note(self.note)


NOTE_MAX_BYTES = 200  # a file name holds 255 bytes: room for the prefix, the time stamp and a suffix


def check_note(note: str) -> None:
    """The note becomes part of one directory name: nothing that would leave --save, nest, or
    put an empty part, a line break or another control character into the name."""
    bad = (
        not note.strip()
        or any(sep in note for sep in ("/", "\\", os.sep))
        or ".." in note
        or any(unicodedata.category(c) == "Cc" for c in note)
        or len(os.fsencode(note)) > NOTE_MAX_BYTES
    )
    if bad:
        raise UserError(
            f"--note {note!r}: expected a name of 1 to {NOTE_MAX_BYTES} bytes without path separators, "
            f"'..' or control characters"
        )


def check_cells(init_channels: int, channels_last: bool) -> None:
    """Cells of one channel reduce with 1x1 stride-2 convolutions of one output channel, whose
    channels-last backward pass corrupts the heap on the CPU (PyTorch 2.14's oneDNN; the run
    dies by SIGABRT or SIGSEGV): refuse the pair rather than crash mid-run."""
    if init_channels == 1 and channels_last:
        raise UserError(
            "--init_channels 1 with --channels_last: expected --no-channels_last or --init_channels 2 or more "
            "(PyTorch's channels-last backward of the one-channel reductions corrupts memory on the CPU)"
        )
