"""Run directories: their file names, making them, per-rank logs, TensorBoard, and reading
and writing their progress state. What a search or evaluation writes is named here once."""

from __future__ import annotations

import atexit
import json
import logging
import os
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
import yaml

from nas.core import distributed as D
from nas.core.distributed import DistEnv
from nas.core.errors import UserError
from nas.core.files import open_append, owner_gone, read_text, read_yaml, write_json

log = logging.getLogger("nas")

CONFIG = "config.yaml"  # the resolved configuration, written before the run starts
DATA_SET = "data.json"  # a search: the data set it reads (label, classes, image size), which a resume checks
STATE = "state.json"  # progress: status (running | finished), phase, decision
SUMMARY = "summary.json"  # written when the run finishes
GENOTYPE = "genotype.json"  # the searched (or evaluated) cells, canonical JSON
DECISIONS = "decisions.json"  # every decision of phases 2-4 with its scores
VALUATION = "valuation"  # phase 1: model<m>.json and average.json
STAGES = "stages.jsonl"  # one line per training epoch: tag, epoch, epochs, lr, loss, top1, rank
EPOCHS = "epochs.jsonl"  # an evaluation: one line per epoch (as the checkpoint's history), and a
# {"resumed_after": epoch} line where a resumed run continued
LAST_CHECKPOINT = "checkpoints/last.pt"
BEST_CHECKPOINT = "checkpoints/model_best.pt"
SEARCH_PREFIX = "search-"
LOCK = "run.lock"  # the process that runs the run: host, pid, launcher job; removed when it ends
# a restarted worker of the same launcher job continues the run of the one that died
LAUNCHER_IDS = ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID")


def new_run_dir(save: str, prefix: str, note: str, env: DistEnv) -> Path:
    """`<save>/<prefix>-<note>-<timestamp>`, created atomically by rank 0 (a suffix -2, -3, ...
    when another run took the name in the same second), the same path on every rank."""
    path = None
    if env.is_main:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(save) / f"{prefix}-{note}-{stamp}"
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                path = base if n == 1 else base.with_name(f"{base.name}-{n}")
                try:
                    path.mkdir()  # atomic: exactly one of several simultaneous starts gets each name
                    break
                except FileExistsError:
                    continue
            lock_run_dir(path, f"run directory {path}")
        except OSError as exc:
            raise UserError(f"cannot create run directory {path or base}: {exc.strerror}") from None
    return Path(D.broadcast_object(str(path) if path else None))


def _lock_record() -> dict:
    record = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    return {**record, **{k: os.environ[k] for k in LAUNCHER_IDS if os.environ.get(k)}}


def _is_stale(held: dict) -> bool:
    """The process that holds `held` ran the run before this one: it ended on this host, it
    is this very process (an in-process run that failed), or this is a restart (torchrun's
    elastic restart, SLURM's requeue) of the same launcher job."""
    mine = _lock_record()
    if held.get("host") == mine["host"] and held.get("pid") == mine["pid"]:
        return True
    if any(held.get(k) is not None and held.get(k) == mine.get(k) for k in LAUNCHER_IDS):
        return True
    return isinstance(held.get("pid"), int) and owner_gone(str(held.get("host")), held["pid"])


_held: set[Path] = set()


def lock_run_dir(run_dir: Path, what: str) -> None:
    """Rank 0's claim on a run directory (`run.lock`, made atomically with its content): a
    second process that would run the same run is refused in one line naming the host and PID
    of the first. A lock left by a process that has ended (SIGKILL) is taken over."""
    path = Path(run_dir) / LOCK
    fd, tmp = tempfile.mkstemp(prefix=f".{LOCK}.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(_lock_record()) + "\n")
        for _ in range(3):
            try:
                os.link(tmp, path)  # atomic, and fails when a lock exists
                break
            except FileExistsError:
                held = read_json_or_none(path)
                if not isinstance(held, dict):
                    raise UserError(
                        f"{what}: {path} is unreadable: if no process runs this run any more, delete it"
                    ) from None
                if not _is_stale(held):
                    raise UserError(
                        f"{what}: the run is already running (pid {held.get('pid')} on {held.get('host')} "
                        f"since {held.get('started')}, {path}); if that process is gone, delete {path}"
                    ) from None
                path.unlink(missing_ok=True)
        else:
            raise UserError(f"{what}: cannot take {path}: other processes keep taking it")
    finally:
        os.unlink(tmp)
    _held.add(path)


def release_run_dirs() -> None:
    """Remove the locks this process holds (at the end of the run, and at exit)."""
    mine = _lock_record()
    for path in list(_held):
        held = read_json_or_none(path)
        if isinstance(held, dict) and held.get("pid") == mine["pid"] and held.get("host") == mine["host"]:
            path.unlink(missing_ok=True)
        _held.discard(path)


atexit.register(release_run_dirs)  # a run that ends by an error or a signal's clean stop


def claim_run_dir(run_dir: Path, what: str, env: DistEnv) -> None:
    """Rank 0 locks a run directory to continue; every rank raises its refusal."""
    error = None
    if env.is_main:
        try:
            lock_run_dir(run_dir, what)
        except (UserError, OSError) as exc:
            error = str(exc) if isinstance(exc, UserError) else f"{what}: cannot write {run_dir / LOCK}: {exc.strerror}"
    error = D.broadcast_object(error)
    if error:
        raise UserError(error)


class _LogFile(logging.FileHandler):
    """A run's log file. A write the system refuses (disk full) is reported once, in one line,
    and the file gets no more lines, instead of logging's traceback for every record; what
    failed stops the run soon after, with its own one-line error."""

    broken = False

    def _open(self):
        return open_append(self.baseFilename)  # never through a planted link, FIFO or device

    def emit(self, record: logging.LogRecord) -> None:
        if not self.broken:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        self.broken = True
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        print(f"warning: cannot write {self.baseFilename}: {reason}; it gets no more log lines", file=sys.stderr)


def setup_logging(run_dir: Optional[Path], rank: int, proc: int = 0) -> None:
    """Log to `log_rank<r>.txt` in the run directory (`log_rank<r>_proc<p>.txt` for a rank's
    phase-1 helper process `p`); rank 0's main process also logs to the terminal."""
    root = logging.getLogger("nas")
    root.setLevel(logging.INFO)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    who = f"rank {rank}" + (f" proc {proc}" if proc else "")
    fmt = logging.Formatter(f"%(asctime)s [{who}] %(message)s", datefmt="%m/%d %H:%M:%S")
    if rank == 0 and proc == 0:
        sh = logging.StreamHandler(sys.stdout)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    if run_dir is not None:
        fh = _LogFile(run_dir / (f"log_rank{rank}.txt" if proc == 0 else f"log_rank{rank}_proc{proc}.txt"))
        fh.setFormatter(fmt)
        root.addHandler(fh)


def tensorboard(run_dir: Path, rank: int):
    """A SummaryWriter under tb/rank<r> (every rank logs its own phase-1 models)."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(run_dir / "tb" / f"rank{rank}"))


def write_state(run_dir: Path, **state) -> None:
    write_json(Path(run_dir) / STATE, state)


def read_json_or_none(path: Path):
    """The JSON document at `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(read_text(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_state(run_dir) -> dict | None:
    """state.json as a dict, or None when missing or unreadable."""
    data = read_json_or_none(Path(run_dir) / STATE)
    return data if isinstance(data, dict) else None


def read_config(run_dir: Path, what: str) -> dict:
    """config.yaml of a run as a dict; a missing or damaged file is the user's error (one line)."""
    path = Path(run_dir) / CONFIG
    try:
        data = read_yaml(path)
    except FileNotFoundError:
        raise UserError(f"{what}: not a run directory (no {path})") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{what}: {path} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise UserError(f"{what}: {path} holds a {type(data).__name__}, not a configuration mapping")
    return data


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path.name.startswith(SEARCH_PREFIX) or any((path / m).is_file() for m in (CONFIG, STATE)))


def find_run_dirs(root) -> list[Path]:
    """Every run directory under root (root itself included), sorted; runs are not searched inside.
    Symbolic links to directories are followed, but each directory is searched once: one reached
    again (a link loop, a second link to it) is skipped with one warning line naming both paths."""
    found, seen = [], {}

    def walk(path: Path) -> None:
        try:
            info = path.stat()
        except OSError:
            return  # a dangling link or a loop of links (the system's ELOOP): nothing to search
        key = (info.st_dev, info.st_ino)
        if key in seen:
            print(f"warning: skipped {path}: it is {seen[key]} again (a symbolic link)", file=sys.stderr)
            return
        seen[key] = path
        if is_run_dir(path):
            found.append(path)
            return
        for child in sorted(p for p in path.iterdir() if p.is_dir()):
            walk(child)

    walk(Path(root))
    return found


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator's peak on GPUs, max RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss_kb / 1024 if sys.platform != "darwin" else rss_kb / 2**20


def elastic_restart() -> bool:
    """True when torchrun restarted this worker after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def eta(elapsed: float, done: int, left: int) -> str:
    """'ETA 3m20s' from the average time of the `done` units so far."""
    if done <= 0:
        return "ETA unknown"
    seconds = int(elapsed / done * left)
    return (
        f"ETA {seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"ETA {seconds // 60}m{seconds % 60:02d}s"
    )
