"""Atomic file writes: a file is either the old version or the new one, never half written."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml

from nas.core.errors import UserError


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "w") -> None:
    """Call write(fileobj) on a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError):  # a failed write names no file, a failed mkstemp the temporary one
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def check_writable(directory, what: str) -> None:
    """A run directory to continue must take new files: say so now, not after the data is loaded."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {directory}: {exc.strerror or exc}") from None


def append_line(path, line: str) -> None:
    """Append one line in one write (processes appending to one file do not tear lines); a
    failure names the file."""
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


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


def torch_load(path, device, what: str) -> Any:
    """A checkpoint written by torch_save, loaded with weights_only: it holds tensors and plain
    data only, so unpickling a planted file can run no code. A file that is not one (truncated,
    foreign, or holding other objects) is the user's: a one-line UserError naming it, prefixed by `what`."""
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated, foreign or planted: the user's file, not our bug
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the name weights_only refused
        if found:
            raise UserError(
                f"{what}: {path} holds a {found.group(1)} object, not only tensors and plain data: "
                f"refused unread, since loading it could run code"
            ) from None
        raise UserError(f"{what}: {path} is not a readable checkpoint ({type(exc).__name__})") from None


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


# --- what an interrupted writer left behind -------------------------------------------------


def owner_tag() -> str:
    """`<host>-<pid>` of this process: put into the names of temporary files and directories
    beside a shared output, so that a later writer knows whose they are."""
    return f"{socket.gethostname()}-{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def owner_gone(host: str, pid: int) -> bool:
    """True when the process `pid` of `host` is known to have ended: on this host, no such
    process. On another host it cannot be told, so it is not gone."""
    return host == socket.gethostname() and not pid_alive(pid)


_PARTIAL = re.compile(r"(?P<host>.+)-(?P<pid>\d+)\.[^.]+\.(tmp|old)$")


def remove_stale_partials(parent, name: str) -> list[Path]:
    """Delete `.<name>.<host>-<pid>.<random>.tmp` (and `.old`) entries beside `parent/name`
    that a killed writer of this host left: the half-written output of a SIGKILLed
    `write_datasets.py`, or the old output it had moved aside. A live writer's are kept."""
    removed = []
    prefix = f".{name}."
    for path in Path(parent).glob(glob.escape(prefix) + "*"):
        found = _PARTIAL.match(path.name[len(prefix) :])
        if found and owner_gone(found["host"], int(found["pid"])):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
