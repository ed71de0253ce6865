"""Atomic file writes: a file is either the old version or the new one, never half written."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "w") -> None:
    """Call write(fileobj) on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def write_json(path, obj: Any) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def write_yaml(path, obj: Any) -> None:
    atomic_write(path, lambda f: yaml.safe_dump(obj, f, sort_keys=False))


def append_jsonl(path, record: Any) -> None:
    """One JSON line appended in one write: a log that is never rewritten (a kill cuts at most
    the last line, which its readers skip)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def torch_save(path, obj: Any) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(obj, f), mode="wb")


def read_json(path) -> Any:
    with open(path) as f:
        return json.load(f)


def remove_stale_tmp(directory) -> int:
    """Delete the temporary files that writes killed mid-way left in `directory` (recursively);
    only the process that owns the directory calls this, before it writes anything."""
    removed = 0
    for tmp in Path(directory).rglob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed
