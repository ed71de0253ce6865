"""Checkpoints and resume of a search. After every decision rank 0 writes the switches, the
trained weights, the optimizer and the decision history (`checkpoints/last.pt`: tensors and plain
data only, loaded with weights_only so that a planted file runs no code), then
`decisions.json`; a resumed run continues after the last completed decision."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Optional

import torch

from nas.core import distributed as D
from nas.core.config import resume_config, runtime_keys, to_dict, upgrade
from nas.core.distributed import DistEnv
from nas.core.errors import UserError
from nas.core.files import check_writable, remove_stale_tmp, torch_load, torch_save, write_json
from nas.core.rundir import (
    CONFIG,
    DATA_SET,
    DECISIONS,
    GENOTYPE,
    LAST_CHECKPOINT,
    SEARCH_PREFIX,
    claim_run_dir,
    elastic_restart,
    read_config,
    read_json_or_none,
    read_state,
)
from nas.search.config import SearchConfig

CHECKPOINT_KEYS = ("done", "switches", "model", "optimizer", "history", "steps_phases2_4", "time_phases2_4")


def save_checkpoint(
    run_dir: Path,
    env: DistEnv,
    *,
    done: int,
    switches: list,
    model: dict,
    optimizer: dict,
    history: list,
    steps_by_rank: list,
    elapsed: float,
) -> None:
    if env.is_main:
        # decisions.json first: it never lags behind the checkpoint a resumed run continues from
        write_json(run_dir / DECISIONS, history)
        torch_save(
            run_dir / LAST_CHECKPOINT,
            {
                "done": done,
                "switches": switches,
                "model": model,
                "optimizer": optimizer,
                "history": history,
                "steps_phases2_4": steps_by_rank,
                "time_phases2_4": elapsed,
            },
        )
    D.barrier()


def load_checkpoint(run_dir: Path, device: torch.device) -> Optional[dict]:
    """The last checkpoint, or None before the first decision; a damaged file is a one-line error."""
    path = run_dir / LAST_CHECKPOINT
    if not path.is_file():
        return None
    try:
        ckpt = torch_load(path, device, f"--resume {run_dir}")
    except UserError as exc:
        raise UserError(f"{exc}; delete it to redo the decisions from the start") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in CHECKPOINT_KEYS):
        raise UserError(f"--resume {run_dir}: {path} is not a search checkpoint; delete it to redo the decisions")
    return ckpt


def check_resumable(run_dir: Path, method: str) -> dict:
    """The saved configuration of `run_dir`, after checking that it is an unfinished run of `method`."""
    what = f"--resume {run_dir}"
    if not (run_dir / CONFIG).is_file():
        killed = run_dir.name.startswith(SEARCH_PREFIX) and run_dir.is_dir()
        raise UserError(
            f"{what}: not a search run directory (expected {run_dir / CONFIG})"
            + ("; a search killed as it started holds nothing to resume: start it again" if killed else "")
        )
    saved = read_config(run_dir, what)
    saved_method = saved.pop("method", None)
    if "eval_task" in saved:
        raise UserError(
            f"{what}: it is a {saved['eval_task']} evaluation run, not a search: resume it with "
            f"train_eval_{saved['eval_task']}.py"
        )
    if saved_method != method:
        raise UserError(
            f"{what}: it is a run of the {saved_method} search, not of the {method} search: resume it with "
            f"search_{saved_method}.py"
        )
    state = read_state(run_dir) or {}
    if state.get("status") == "finished":
        raise UserError(f"{what}: the search already finished (see {run_dir / GENOTYPE})")
    check_writable(run_dir, what)
    return saved


def check_same_data(run_dir: Path, data_set: dict, train_path: str) -> None:
    """A resumed search reads the data set it started on: --train_path may name another copy of
    it (the run moved), not other data. Runs from before data.json are not checked."""
    saved = read_json_or_none(run_dir / DATA_SET)
    if isinstance(saved, dict) and saved != data_set:

        def show(d: dict) -> str:
            return f"{d.get('label')} ({d.get('classes')} classes, {d.get('image_size')} px)"

        raise UserError(
            f"--resume {run_dir}: --train_path {train_path} holds {show(data_set)}, but the run searched "
            f"{show(saved)}: give it the data root it started on (a moved copy is fine)"
        )


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def find_resumable(cfg: SearchConfig, method: str) -> Optional[str]:
    """After an elastic restart: the newest unfinished run of this note with the same config."""
    runtime = runtime_keys(type(cfg))
    mine = {k: _plain(v) for k, v in to_dict(cfg).items() if k not in runtime}
    candidates = sorted(
        Path(cfg.save).glob(f"{SEARCH_PREFIX}{glob.escape(cfg.note)}-*"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for run_dir in candidates:
        state = read_state(run_dir) or {}
        if state.get("status") != "running" or not (run_dir / CONFIG).is_file():
            continue
        try:
            saved = upgrade(type(cfg), read_config(run_dir, str(run_dir)))  # old runs' keys too
        except UserError:
            continue
        if saved.get("method") == method and all(_plain(saved.get(k)) == v for k, v in mine.items()):
            return str(run_dir)
    return None


def resolve_config(cfg: SearchConfig, *, method: str, given: dict, env: DistEnv) -> tuple[SearchConfig, Optional[Path]]:
    """The configuration to run and, when resuming (--resume or a torchrun restart), the run directory."""
    resume = cfg.resume
    if resume is None and elastic_restart():
        resume = D.broadcast_object(find_resumable(cfg, method) if env.is_main else None)
    if resume is None:
        return cfg, None
    run_dir = Path(resume)
    saved = check_resumable(run_dir, method)
    cfg = resume_config(
        type(cfg), {**saved, "resume": str(run_dir)}, given, what=f"--resume {run_dir}", source=str(run_dir / CONFIG)
    )
    claim_run_dir(run_dir, f"--resume {run_dir}", env)  # before anything of the run is touched
    if env.is_main:
        remove_stale_tmp(run_dir)  # half-written files of the process that was killed
    return cfg, run_dir
