"""Training a searched cell from scratch (SPEC §7): what train_eval_cifar.py and
train_eval_imagenet.py share.

A run lives in `<save>/eval-<note>-<time>/`: config.yaml, genotype.json (the evaluated
cells), log_rank<r>.txt, tb/, checkpoints/last.pt (every epoch, atomically),
checkpoints/model_best.pt, and summary.json when finished. `--resume` continues a run
exactly: model, optimizer, scheduler, scaler, epoch and best accuracy come from the
checkpoint, and every epoch seeds itself from the run seed, the epoch and the rank, so the
random numbers of an epoch (drop-path masks, augmentation on the torch loader) do not
depend on where the run was interrupted.

Every check of the user's input (flags, genotypes, data, the checkpoint to resume) runs
before anything is written.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from nas.core import distributed as D
from nas.core import stop
from nas.core.compile import check_compile, optimizer_options, prepare
from nas.core.config import resume_config, to_dict
from nas.core.engine import Precision, evaluate, train
from nas.core.errors import UserError
from nas.core.files import (
    append_jsonl,
    check_writable,
    remove_stale_tmp,
    torch_load,
    torch_save,
    write_json,
    write_yaml,
)
from nas.core.rundir import (
    BEST_CHECKPOINT,
    CONFIG,
    EPOCHS,
    GENOTYPE,
    LAST_CHECKPOINT,
    claim_run_dir,
    new_run_dir,
    peak_memory_mb,
    read_config,
    release_run_dirs,
    setup_logging,
    tensorboard,
    write_state,
)
from nas.core.seeding import derive_seed, prepare_determinism, seed_all, set_determinism
from nas.data.datasets import data_label, root_dataset
from nas.data.loaders import DataConfig, build_eval_loaders
from nas.evaluation.config import CifarEvalConfig, EvalConfig, ImageNetEvalConfig
from nas.evaluation.cost import count_macs, count_parameters_m
from nas.evaluation.networks import NetworkCIFAR, NetworkImageNet
from nas.evaluation.schedules import build_scheduler, drop_path_prob
from nas.genotype import (
    Genotype,
    combine,
    format_literal,
    genotype_from_dict,
    genotype_to_dict,
    load_genotype,
    save_genotype,
)

log = logging.getLogger("nas")
TB_TAGS = {
    "train_loss": "train/loss",
    "train_top1": "train/top1",
    "val_loss": "val/loss",
    "val_top1": "val/top1",
    "val_top5": "val/top5",
    "lr": "lr",
    "drop_path_prob": "drop_path_prob",
    "seconds": "epoch_seconds",
}


@dataclass(frozen=True)
class Task:
    """What differs between the CIFAR and the ImageNet evaluation."""

    name: str  # "cifar" or "imagenet"
    data_config: Callable[[EvalConfig], DataConfig]
    build_network: Callable[[EvalConfig, int, int, Genotype], nn.Module]  # (cfg, classes, image size, genotype)


def _cifar_data(cfg: CifarEvalConfig) -> DataConfig:
    return DataConfig(
        root=cfg.data,
        dataset=cfg.dataset,
        loader=cfg.loader,
        workers=cfg.workers,
        train_subset=cfg.train_subset,
        cutout=cfg.cutout_length,
        norm_constants=cfg.norm_constants,
    )


def _imagenet_data(cfg: ImageNetEvalConfig) -> DataConfig:
    return DataConfig(
        root=cfg.data, dataset="imagenet", loader=cfg.loader, workers=cfg.workers, train_subset=cfg.train_subset
    )


CIFAR = Task(
    "cifar", _cifar_data, lambda cfg, n, size, g: NetworkCIFAR(cfg.init_channels, n, cfg.layers, cfg.auxiliary, g)
)
IMAGENET = Task(
    "imagenet",
    _imagenet_data,
    lambda cfg, n, size, g: NetworkImageNet(cfg.init_channels, n, cfg.layers, cfg.auxiliary, g, image_size=size),
)


def _check_root_task(task: Task, data: str) -> Optional[str]:
    """The one rule for a root written by write_datasets.py folder: 32-px images through the
    CIFAR evaluation, larger ones through the ImageNet one. Its name, or None for other roots."""
    dataset = root_dataset(data)
    if dataset is None:
        return None
    wanted = "cifar" if dataset.is_cifar else "imagenet"
    if task.name != wanted:
        raise UserError(
            f"--data {data} holds {dataset.image_size} px images: evaluate them with train_eval_{wanted}.py "
            f"(32 px: the CIFAR network and augmentations; larger: the ImageNet ones)"
        )
    return dataset.name


def resolve_genotype(arch: str, reduce_arch: Optional[str] = None) -> Genotype:
    """The cells to evaluate: `arch`'s, or `arch`'s normal cell with `reduce_arch`'s reduction cell."""
    genotype = load_genotype(arch)
    return combine(genotype, load_genotype(reduce_arch)) if reduce_arch else genotype


def make_criteria(label_smooth: float) -> tuple[nn.Module, nn.Module]:
    """(training, validation) losses: label smoothing in training only."""
    return nn.CrossEntropyLoss(label_smoothing=label_smooth), nn.CrossEntropyLoss()


def _mean_over_ranks(res: dict, device: torch.device) -> dict:
    """The training averages of all ranks (the engine returns this rank's)."""
    n = res["samples"]
    sums = D.all_reduce_sum(torch.tensor([res["loss"] * n, res["top1"] * n, n], dtype=torch.float64, device=device))
    loss, top1, n = sums.tolist()
    return {**res, "loss": loss / max(n, 1.0), "top1": top1 / max(n, 1.0), "samples": int(n)}


# ------------------------------------------------------------------------------ resume
def _resume_paths(resume: str) -> tuple[Path, Path]:
    """(run directory, checkpoint) of a --resume argument: a run directory or a checkpoint in it."""
    path = Path(resume)
    if path.is_dir():
        return path, path / LAST_CHECKPOINT
    if path.is_file():
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return run_dir, path
    raise UserError(f"--resume {resume}: no such run directory or checkpoint")


def _load_checkpoint(path: Path, what: str, device: torch.device) -> dict:
    ckpt = torch_load(path, device, what)
    if not isinstance(ckpt, dict) or "eval_task" not in ckpt:
        raise UserError(f"{what}: {path} is not a checkpoint of an evaluation run")
    if "optimizer" not in ckpt:
        raise UserError(f"{what}: {path} holds the best weights only: resume from {LAST_CHECKPOINT} of the run")
    return ckpt


def _saved_run(run_dir: Path, ckpt_path: Path, what: str, device: torch.device) -> tuple[dict, Optional[dict]]:
    """(the run's configuration, its checkpoint). A run killed during its first epoch has no
    checkpoint yet: its config.yaml says what to start again, and the checkpoint is None."""
    if ckpt_path.is_file():
        ckpt = _load_checkpoint(ckpt_path, what, device)
        return {"eval_task": ckpt["eval_task"], **ckpt["config"]}, ckpt
    if ckpt_path != run_dir / LAST_CHECKPOINT or not (run_dir / CONFIG).is_file():
        raise UserError(f"{what}: no checkpoint {ckpt_path} and no {CONFIG}: not an evaluation run directory")
    return read_config(run_dir, what), None


def _open_resume(
    cfg: EvalConfig, given: dict, task: Task, env: D.DistEnv
) -> tuple[EvalConfig, Path, Optional[dict], Genotype]:
    """The run's own configuration, its directory, its checkpoint (None when it did not finish an
    epoch) and its genotype, after checking that the explicitly given flags do not ask for
    something else."""
    what = f"--resume {cfg.resume}"
    run_dir, ckpt_path = _resume_paths(cfg.resume)
    if (run_dir / CONFIG).is_file() and "method" in read_config(run_dir, what):
        raise UserError(
            f"{what}: it is a search run, not an evaluation: evaluate the genotype it found with --arch {run_dir}"
        )
    saved, ckpt = _saved_run(run_dir, ckpt_path, what, env.device)
    saved_task = saved.pop("eval_task", None)
    if saved_task != task.name:
        raise UserError(f"{what}: it is a {saved_task} evaluation run, not {task.name}")
    source = f"the checkpoint {ckpt_path}" if ckpt else str(run_dir / CONFIG)
    cfg = resume_config(
        type(cfg), {**saved, "resume": cfg.resume}, given, what=what, keep=("arch", "reduce_arch"), source=source
    )
    # the genotype the run trained (or, before its first checkpoint, the one it saved when it started)
    saved_genotype = run_dir / GENOTYPE
    genotype = (
        genotype_from_dict(ckpt["genotype"])
        if ckpt
        else load_genotype(saved_genotype)
        if saved_genotype.is_file()
        else resolve_genotype(saved["arch"], saved["reduce_arch"])
    )
    if "arch" in given or "reduce_arch" in given:
        wanted = resolve_genotype(given.get("arch", saved["arch"]), given.get("reduce_arch", saved["reduce_arch"]))
        if genotype_to_dict(wanted) != genotype_to_dict(genotype):
            asked = " ".join(f"--{k} {given[k]}" for k in ("arch", "reduce_arch") if k in given)
            has = f"--arch {saved['arch']}" + (f" --reduce_arch {saved['reduce_arch']}" if saved["reduce_arch"] else "")
            raise UserError(f"{what}: {asked} names another architecture than the run trains (run has {has})")
    if ckpt and ckpt["epoch"] >= saved["epochs"]:
        raise UserError(
            f"{what}: the run already finished its {saved['epochs']} epochs (see {run_dir / 'summary.json'})"
        )
    check_writable(run_dir, what)
    claim_run_dir(run_dir, what, env)
    return cfg, run_dir, ckpt, genotype


def _check_resumed_data(ckpt: dict, dataset: dict, what: str) -> None:
    if ckpt["dataset"] != dataset:
        have = ckpt["dataset"]
        raise UserError(
            f"{what}: its checkpoint was trained on {have['name']} ({have['num_classes']} classes, "
            f"{have['image_size']} px), but the data is {dataset['name']} ({dataset['num_classes']} classes, "
            f"{dataset['image_size']} px)"
        )


# ------------------------------------------------------------------------------ the run
def run_evaluation(cfg: EvalConfig, given: dict, task: Task) -> dict:
    """Train and validate the network of `cfg.arch` for `cfg.epochs`; return the summary."""
    return evaluation_run(cfg, given, task)[1]


def evaluation_run(cfg: EvalConfig, given: dict, task: Task) -> tuple[Path, dict]:
    """run_evaluation's run directory and summary (the Python API names both)."""
    prepare_determinism(cfg.deterministic)  # before CUDA starts
    env = D.init_distributed(cfg.cluster, cfg.device, force=cfg.distributed)

    def go() -> tuple[Path, dict]:
        stop.arm(requeue=cfg.requeue)
        run = EvalRun(cfg, given or {}, task, env)
        run.open_run_dir()
        for epoch in range(run.state["epoch"], run.cfg.epochs):
            run.train_epoch(epoch)
            if epoch + 1 < run.cfg.epochs:
                stop.safe_point(f"epoch {epoch + 1}/{run.cfg.epochs}", run.run_dir, device=env.device)
        return run.run_dir, run.finish()

    try:
        return D.guard_peers(go)
    finally:
        release_run_dirs()  # a refused or failed run leaves its directory to the next --resume
        D.cleanup()
        stop.disarm()


class EvalRun:
    """One evaluation run. The constructor checks all input and builds everything without
    writing a file; open_run_dir() starts writing."""

    def __init__(self, cfg: EvalConfig, given: dict, task: Task, env: D.DistEnv):
        setup_logging(None, env.rank)  # the terminal only until the input is checked
        self.task, self.env = task, env
        self.ckpt, self.run_dir, self.genotype = None, None, None
        if cfg.resume is not None:
            cfg, self.run_dir, self.ckpt, self.genotype = _open_resume(cfg, given, task, env)
        self.cfg = cfg
        if cfg.epochs < 1:
            raise UserError(f"--epochs {cfg.epochs}: expected at least 1")
        if cfg.batch_size % env.world_size:
            raise UserError(
                f"--batch_size {cfg.batch_size} does not split over {env.world_size} processes: "
                f"expected a multiple of the world size"
            )
        if cfg.auxiliary and cfg.batch_size // env.world_size < 2:
            raise UserError(
                f"--batch_size {cfg.batch_size} with --auxiliary on {env.world_size} process(es): expected at least "
                f"2 images per process (the auxiliary head batch-normalises 1x1 maps over the batch), or --no-auxiliary"
            )
        # A resumed run trains its own genotype, wherever the spec's files are now.
        self.genotype = self.genotype or resolve_genotype(cfg.arch, cfg.reduce_arch)
        self.precision = Precision.choose(env.device, cfg.amp)
        check_compile(cfg.compile, env.device)
        data_cfg = task.data_config(cfg)
        name = _check_root_task(task, cfg.data) or data_cfg.dataset
        self.data = build_eval_loaders(
            data_cfg,
            cfg.batch_size // env.world_size,
            env.rank,
            env.world_size,
            env.device,
            channels_last=cfg.channels_last,
            precision=self.precision,
            seed=cfg.seed,
            drop_last=cfg.drop_last,
        )
        self.dataset = {"name": name, "num_classes": self.data.num_classes, "image_size": self.data.image_size}
        self.data_label = data_label(data_cfg.dataset, data_cfg.root)
        if self.ckpt is not None:
            _check_resumed_data(self.ckpt, self.dataset, f"--resume {cfg.resume}")
        self._build_training()

    def _build_training(self) -> None:
        cfg, env, size = self.cfg, self.env, self.data.image_size
        seed_all(cfg.seed)  # the same initial weights on every rank
        net = self.task.build_network(cfg, self.data.num_classes, size, self.genotype)
        self.params_m = count_parameters_m(net)
        self.macs_m = count_macs(net, (1, 3, size, size))
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.net = net.to(env.device, memory_format=memory_format)
        self.optimizer = torch.optim.SGD(
            net.parameters(),
            cfg.learning_rate,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            **optimizer_options(env.device, cfg.compile, scaler=self.precision.scaled),
        )
        self.scheduler = build_scheduler(self.optimizer, cfg.lr_scheduler, cfg.epochs, cfg.batch_size)
        self.scaler = self.precision.make_scaler()
        self.state = {"epoch": 0, "best_top1": 0.0, "best_epoch": 0, "history": [], "elapsed_s": 0.0}
        if self.ckpt is not None:
            try:
                net.load_state_dict(self.ckpt["model"])
            except RuntimeError:
                raise UserError(f"--resume {cfg.resume}: its weights do not fit the network of {cfg.arch}") from None
            self.optimizer.load_state_dict(self.ckpt["optimizer"])
            self.scheduler.load_state_dict(self.ckpt["scheduler"])
            self.scaler.load_state_dict(self.ckpt["scaler"])
            self.state = {k: self.ckpt[k] for k in self.state}
        set_determinism(cfg.deterministic, env.device)

        def ddp(m):
            return DDP(m, device_ids=[env.device] if env.device.type == "cuda" else None)

        self.model = prepare(net, cfg.compile, wrap=ddp if env.world_size > 1 else None)
        self.train_criterion, self.val_criterion = (c.to(env.device) for c in make_criteria(cfg.label_smooth))

    def open_run_dir(self) -> None:
        """The input is valid: make the run directory (or continue the resumed one's) and log there."""
        resumed = self.run_dir is not None
        if not resumed:
            self.run_dir = new_run_dir(self.cfg.save, "eval", self.cfg.note, self.env)
            if self.env.is_main:
                write_yaml(self.run_dir / CONFIG, {"eval_task": self.task.name, **to_dict(self.cfg)})
                save_genotype(self.run_dir / GENOTYPE, self.genotype)
            D.barrier()
        elif self.env.is_main:
            remove_stale_tmp(self.run_dir)  # half-written files of the process that was killed
        D.watch_run_dir(self.run_dir)
        setup_logging(self.run_dir, self.env.rank)
        self.tb = tensorboard(self.run_dir, self.env.rank) if self.env.is_main else None
        how = (
            f"resumed after epoch {self.state['epoch']}"
            if self.ckpt
            else "started again: it stopped in its first epoch"
            if resumed
            else "new run"
        )
        log.info(
            "%s evaluation in %s (%s, world size %d, device %s)",
            self.task.name,
            self.run_dir,
            how,
            self.env.world_size,
            self.env.device,
        )
        if self.env.is_main:
            if resumed:  # the report draws the curves across it
                append_jsonl(self.run_dir / EPOCHS, {"resumed_after": self.state["epoch"]})
            self._write_state("running")
        log.info("genotype = %s", format_literal(self.genotype))
        log.info(
            "%s: %d classes, %d px; params %.6f M (auxiliary head excluded), %.2f M MACs",
            self.data_label,
            self.data.num_classes,
            self.data.image_size,
            self.params_m,
            self.macs_m,
        )

    def train_epoch(self, epoch: int) -> None:
        """Train, validate, log and checkpoint one epoch."""
        cfg, state = self.cfg, self.state
        tic = time.time()
        seed_all(derive_seed(cfg.seed, "epoch", epoch, self.env.rank))
        self.data.train.set_epoch(epoch)
        self.net.drop_path_prob = drop_path_prob(cfg.drop_path_prob, epoch, cfg.epochs)
        lr = self.optimizer.param_groups[0]["lr"]
        res = train(
            self.model,
            self.data.train,
            self.optimizer,
            self.train_criterion,
            self.precision,
            self.scaler,
            grad_clip=cfg.grad_clip or None,
            aux_weight=cfg.auxiliary_weight if cfg.auxiliary else 0.0,
            log_every=cfg.log_every,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            progress=cfg.progress and self.env.is_main,
        )
        res = _mean_over_ranks(res, self.env.device)
        self.scheduler.step()
        D.broadcast_buffers(self.net)  # every rank validates (and rank 0 saves) the same BN statistics
        val = evaluate(self.model, self.data.val, self.val_criterion, self.precision, reduce=self.env.world_size > 1)
        seconds = time.time() - tic
        state["elapsed_s"] += seconds
        state["epoch"] = epoch + 1
        is_best = val["top1"] > state["best_top1"] and math.isfinite(val["loss"])  # a NaN epoch is never the best
        if is_best:
            state["best_top1"], state["best_epoch"] = val["top1"], epoch + 1
        entry = {
            "epoch": epoch + 1,
            "lr": lr,
            "drop_path_prob": self.net.drop_path_prob,
            "train_loss": res["loss"],
            "train_top1": res["top1"],
            "val_loss": val["loss"],
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "seconds": round(seconds, 2),
        }
        state["history"].append(entry)
        log.info(
            "epoch %d/%d lr %.5g drop_path %.3f | train loss %.4f top1 %.2f | val loss %.4f top1 %.2f top5 %.2f"
            " | best top1 %.2f (epoch %d) | %.1fs",
            epoch + 1,
            cfg.epochs,
            lr,
            entry["drop_path_prob"],
            res["loss"],
            res["top1"],
            val["loss"],
            val["top1"],
            val["top5"],
            state["best_top1"],
            state["best_epoch"],
            seconds,
        )
        if self.env.is_main:
            for key, tag in TB_TAGS.items():
                self.tb.add_scalar(tag, entry[key], epoch + 1)
            self.tb.flush()
            append_jsonl(self.run_dir / EPOCHS, entry)  # a kill before the checkpoint repeats it: the last wins
            self._save_checkpoint(is_best)
            self._write_state("running")
        D.barrier()

    def _write_state(self, status: str) -> None:
        """state.json: what the run trains (the real network's size, from its start) and how far it got,
        for the run table and the report while the run is unfinished."""
        history, state = self.state["history"], self.state
        write_state(
            self.run_dir,
            status=status,
            eval_task=self.task.name,
            dataset=self.dataset["name"],
            data_label=self.data_label,
            params_m=round(self.params_m, 6),
            macs_m=round(self.macs_m, 3),
            epoch=state["epoch"],
            epochs=self.cfg.epochs,
            best_top1=state["best_top1"] if history else None,
            best_epoch=state["best_epoch"] if history else None,
            final_top1=history[-1]["val_top1"] if history else None,
            final_top5=history[-1]["val_top5"] if history else None,
            elapsed_s=round(state["elapsed_s"], 2),
        )

    def _save_checkpoint(self, is_best: bool) -> None:
        checkpoint = {
            "eval_task": self.task.name,
            "config": to_dict(self.cfg),
            "genotype": genotype_to_dict(self.genotype),
            "dataset": self.dataset,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            **self.state,
        }
        if is_best:  # before last.pt, which records it as the best
            torch_save(
                self.run_dir / BEST_CHECKPOINT,
                {k: v for k, v in checkpoint.items() if k not in ("optimizer", "scheduler", "scaler")},
            )
        torch_save(self.run_dir / LAST_CHECKPOINT, checkpoint)

    def finish(self) -> dict:
        """summary.json: size and cost of the network, best and final accuracy, time."""
        state, env = self.state, self.env
        final = state["history"][-1]
        on_gpu = env.device.type == "cuda"
        summary = {
            "status": "finished",
            "eval_task": self.task.name,
            "dataset": self.dataset["name"],
            "data_label": self.data_label,  # the data set as it is: digits read as cifar10 is digits
            "arch": self.cfg.arch,
            "reduce_arch": self.cfg.reduce_arch,
            "genotype": genotype_to_dict(self.genotype),
            "params_m": round(self.params_m, 6),
            "macs_m": round(self.macs_m, 3),
            "best_top1": state["best_top1"],
            "best_epoch": state["best_epoch"],
            "final_top1": final["val_top1"],
            "final_top5": final["val_top5"],
            "epochs": state["epoch"],
            "wall_time_s": round(state["elapsed_s"], 2),  # training and validation, summed over resumes
            "world_size": env.world_size,
            "device": str(env.device),
            "gpu_model": torch.cuda.get_device_name(env.device) if on_gpu else None,
            "gpu_hours": round(env.world_size * state["elapsed_s"] / 3600, 4) if on_gpu else 0.0,
            "peak_memory_mb": D.all_gather_object(round(peak_memory_mb(env.device), 1)),
            "seed": self.cfg.seed,
        }
        if env.is_main:
            write_json(self.run_dir / "summary.json", summary)
            self._write_state("finished")
            self.tb.close()
            release_run_dirs()
        D.barrier()
        log.info(
            "best top1 %.2f (epoch %d), final top1 %.2f; run directory %s",
            summary["best_top1"],
            summary["best_epoch"],
            summary["final_top1"],
            self.run_dir,
        )
        return summary
