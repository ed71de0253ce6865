"""File access for run directories and data roots, which others may share and plant files in.

Writes are atomic (a file is either the old version or the new one, never half written) and
replace what stood at the path (a symbolic link included) instead of writing through it. Reads
and appends open regular files only: a FIFO, a device (/dev/zero) or a directory is refused in
one line naming the file, never waited on or read forever; an append never follows a symbolic
link or writes into a file hard-linked from elsewhere. YAML is read safely, and a document whose
aliases expand it beyond any real configuration (an alias bomb) is refused.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, Callable, TextIO

import yaml

from nas.core.errors import UserError, describe_os_error


def package_folder(package: str, name: str) -> Path:
    """A folder of data shipped inside the package (the presets, the genotype library), found through
    importlib.resources, so that a wheel installed anywhere finds it as a source checkout does."""
    folder = resources.files(package).joinpath(name)
    if not isinstance(folder, Path):  # a zipped install: the callers list and read these folders as files
        raise UserError(f"{package} is installed zipped: its package data must be files; reinstall it with pip")
    return folder


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
    """A run directory to continue must take new files: say so now, not after the data is loaded.
    A sub-directory that is a symbolic link (a planted `checkpoints -> elsewhere`) is refused:
    the run would write its files into the linked directory, outside the run."""
    try:
        for entry in os.scandir(directory):
            if entry.is_symlink() and entry.is_dir():
                raise UserError(
                    f"{what}: {entry.path} is a symbolic link to the directory {os.path.realpath(entry.path)}: "
                    f"refused, a run writes its files only inside its directory"
                )
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{what}: cannot write in {directory}: {exc.strerror or exc}") from None


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
)


def _not_regular(path, mode: int) -> OSError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return OSError(errno.EINVAL, f"is {kind}, not a regular file: refused", str(path))


def _open_checked(path, flags: int, *, appending: bool) -> int:
    """A descriptor of the regular file at `path`; O_NONBLOCK so that opening a FIFO returns at
    once (and is then refused) instead of waiting for a writer."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        if appending and exc.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a link
            raise OSError(exc.errno, "is a symbolic link: refused, a run's files are written only in it", str(path))
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise _not_regular(path, stat.S_IFIFO) from None
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
        if appending and info.st_nlink > 1:
            raise OSError(errno.EMLINK, "has other hard links: refused, it may be a file outside the run", str(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path) -> BinaryIO:
    """The regular file at `path` opened for binary reading (a symbolic link to one is followed);
    anything else is refused with an OSError naming it."""
    return os.fdopen(_open_checked(path, os.O_RDONLY, appending=False), "rb")


def check_regular(path) -> None:
    """Refuse (OSError naming it) what is not a regular file, before a reader opens it by name."""
    os.close(_open_checked(path, os.O_RDONLY, appending=False))


def read_bytes(path) -> bytes:
    with open_regular(path) as f:
        return f.read()


def read_text(path, errors: str = "strict") -> str:
    return read_bytes(path).decode("utf-8", errors=errors)


def open_append(path) -> TextIO:
    """A text file to append to: created if missing; a symbolic link, a FIFO, a device or a file
    with other hard links in its place is refused (OSError naming it), nothing outside written."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(_open_checked(path, flags, appending=True), "a", encoding="utf-8")


def append_line(path, line: str) -> None:
    """Append one line in one write (processes appending to one file do not tear lines); a
    failure names the file."""
    try:
        with open_append(path) as f:
            f.write(line + "\n")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


YAML_NODES = 1_000_000  # far above any configuration or dataset.yaml, far below an alias bomb's expansion


def parse_yaml(text: str):
    """yaml.safe_load, and a yaml.YAMLError for a document whose aliases expand it beyond
    YAML_NODES values (safe_load keeps the aliases shared, but whoever walks the result, str()
    or a table of it, would walk the expansion)."""
    data = yaml.safe_load(text)
    budget, stack = YAML_NODES, [data]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise yaml.YAMLError(f"its aliases expand it to more than {YAML_NODES} values (an alias bomb)")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return data


def read_yaml(path):
    """The YAML document in the regular file at `path` (OSError, UnicodeDecodeError or
    yaml.YAMLError when it cannot be)."""
    return parse_yaml(read_text(path))


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
    append_line(path, json.dumps(record))


def torch_save(path, obj: Any) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(obj, f), mode="wb")


def torch_load(path, device, what: str) -> Any:
    """A checkpoint written by torch_save, loaded with weights_only: it holds tensors and plain
    data only, so unpickling a planted file can run no code. A file that is not one (truncated,
    foreign, or holding other objects) is the user's: a one-line UserError naming it, prefixed by `what`."""
    import torch

    try:
        with open_regular(path) as f:
            return torch.load(f, map_location=device, weights_only=True)
    except OSError as exc:  # missing, unreadable, or not a regular file (a FIFO, /dev/zero)
        raise UserError(f"{what}: {describe_os_error(exc)}") from None
    except Exception as exc:  # truncated, foreign or planted: the user's file, not our bug
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the name weights_only refused
        if found:
            raise UserError(
                f"{what}: {path} holds a {found.group(1)} object, not only tensors and plain data: "
                f"refused unread, since loading it could run code"
            ) from None
        raise UserError(f"{what}: {path} is not a readable checkpoint ({type(exc).__name__})") from None


def read_json(path) -> Any:
    return json.loads(read_text(path))


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
