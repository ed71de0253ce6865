"""One search from its flags to its genotype (docs/method.md): processes, configuration (new
or resumed), data and run directory; then the method's phase 1 if it has one, the decisions
of phases 2-4 with a checkpoint after each, and the outputs.

Every decision seeds itself from the run seed and its index, so a resumed run ends with the
genotype of an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from typing import Optional

import torch

from nas.core import distributed as D
from nas.core import stop
from nas.core.compile import check_compile
from nas.core.config import to_dict
from nas.core.engine import Precision
from nas.core.errors import UserError
from nas.core.files import write_json, write_yaml
from nas.core.rundir import (
    CONFIG,
    DATA_SET,
    GENOTYPE,
    STAGES,
    SUMMARY,
    eta,
    new_run_dir,
    peak_memory_mb,
    release_run_dirs,
    setup_logging,
    tensorboard,
    write_state,
)
from nas.core.seeding import derive_seed, prepare_determinism, seed_all, set_determinism
from nas.data.datasets import data_label
from nas.data.loaders import DataConfig, build_search_loaders
from nas.genotype import format_literal, genotype_from_switches, genotype_to_dict, save_genotype
from nas.search.checkpoints import check_same_data, load_checkpoint, resolve_config, save_checkpoint
from nas.search.config import SearchConfig
from nas.search.decisions import DECISION_COUNT, FINE, START, fine_decision, plan, renumber, topology_decision
from nas.search.registry import SearchMethod
from nas.search.stages import Trainer
from nas.space.switches import Switches, make_switches, to_lists

log = logging.getLogger("nas")


def open_search_data(cfg: SearchConfig, env: D.DistEnv, precision: Precision):
    """The search's loaders for this process (a phase-1 helper process opens its own)."""
    data_cfg = DataConfig(
        root=cfg.train_path,
        dataset=cfg.dataset,
        loader=cfg.loader,
        workers=cfg.workers,
        val_size=cfg.val_size,
        val_protocol=cfg.val_protocol,
        split_seed=cfg.split_seed,
        train_subset=cfg.train_subset,
        cutout=8,
        norm_constants=cfg.norm_constants,
        image_size=cfg.image_size,
    )
    return build_search_loaders(
        data_cfg,
        cfg.batch_size,
        env.rank,
        env.world_size,
        env.device,
        channels_last=cfg.channels_last,
        precision=precision,
        seed=cfg.seed,
    )


def check_decision_parallel(cfg: SearchConfig, world: int) -> None:
    """`accumulate` chains the candidates (each starts where the one before it ended): split
    over ranks, the chain breaks, so several processes must each compute it whole."""
    if world > 1 and cfg.decision_parallel == "ddp" and cfg.perturb_restore == "accumulate":
        raise UserError(
            f"--perturb_restore accumulate with {world} processes: expected --decision_parallel replicate "
            f"(a chain of candidates cannot be split over the ranks)"
        )


class SearchRun:
    def __init__(self, method: SearchMethod, cfg: SearchConfig, given: Optional[dict] = None):
        self.method = method
        prepare_determinism(cfg.deterministic)  # before CUDA starts
        self.env = D.init_distributed(cfg.cluster, cfg.device, force=cfg.distributed)
        setup_logging(None, self.env.rank)  # the terminal only until the input is checked
        self.cfg, resume_dir = resolve_config(cfg, method=method.name, given=given or {}, env=self.env)
        stop.arm(requeue=self.cfg.requeue)
        if method.check is not None:
            method.check(self.cfg, self.env)
        check_decision_parallel(self.cfg, self.env.world_size)
        precision = Precision.choose(self.env.device, self.cfg.amp)
        check_compile(self.cfg.compile, self.env.device, perturb=self.cfg.compile_perturb)
        set_determinism(self.cfg.deterministic, self.env.device)
        data = open_search_data(self.cfg, self.env, precision)
        # the data set as it is: a root's own dataset.yaml names it, whatever --dataset (or a preset) said
        self.data_label = data_label(self.cfg.dataset, self.cfg.train_path)
        self.data_set = {"label": self.data_label, "classes": data.num_classes, "image_size": data.image_size}
        if resume_dir is not None:
            check_same_data(resume_dir, self.data_set, self.cfg.train_path)
        # a damaged checkpoint fails now, not after phase 1 has been redone
        self.checkpoint = load_checkpoint(resume_dir, self.env.device) if resume_dir is not None else None
        # bad flags and bad data have failed by now: only then is a run directory made
        self.resumed = resume_dir is not None
        self.run_dir = resume_dir if self.resumed else self._new_run_dir()
        D.watch_run_dir(self.run_dir)
        setup_logging(self.run_dir, self.env.rank)
        self.trainer = Trainer(
            self.cfg,
            self.env,
            data,
            precision,
            tensorboard(self.run_dir, self.env.rank),
            stage_log=self.run_dir / STAGES,
        )
        self.start_time = time.time()
        log.info(
            "%s search on %s in %s (%s, world size %d, device %s, %s loader, lr %.4g for batch %d)",
            method.name,
            self.data_label,
            self.run_dir,
            "resumed" if self.resumed else "new run",
            self.env.world_size,
            self.env.device,
            data.backend,
            self.cfg.scaled_lr,
            self.cfg.batch_size,
        )
        if self.cfg.control:
            log.info(
                "a control (--scores random): the whole pipeline runs, but every decision takes random "
                "scores drawn from seed %d instead of perturb-val's",
                self.cfg.seed,
            )

    def _new_run_dir(self):
        run_dir = new_run_dir(self.cfg.save, "search", self.cfg.note, self.env)
        if self.env.is_main:
            write_yaml(run_dir / CONFIG, {"method": self.method.name, **to_dict(self.cfg)})
            write_json(run_dir / DATA_SET, self.data_set)
            write_state(run_dir, status="running", method=self.method.name, phase="start")
        D.barrier()
        return run_dir

    def run(self) -> None:
        phase1 = self.method.phase1(self) if self.method.phase1 is not None else None
        if phase1 is not None:
            stop.safe_point("phase 1", self.run_dir, device=self.env.device)
        switches, history, time_decisions = self.run_decisions(phase1)
        self.finish(
            switches,
            history,
            time_phase1=phase1.seconds if phase1 else 0.0,
            time_decisions=time_decisions,
            helper_peak_mb=phase1.helper_peak_mb if phase1 else (),
        )

    def run_decisions(self, phase1) -> tuple[Switches, list, float]:
        """The method's start, then the fine and topology decisions, checkpointing after each;
        a resumed run continues after its last checkpoint."""
        trainer, cfg = self.trainer, self.cfg
        decisions = plan(self.method.start_name, cfg.seed)
        ckpt, self.checkpoint = self.checkpoint, None  # not kept in memory once loaded into the network
        done, history, net, optimizer, switches = -1, [], None, None, None
        if ckpt is not None:
            done, history = ckpt["done"], renumber(ckpt["history"])
            if len(ckpt["steps_phases2_4"]) == self.env.world_size:
                trainer.steps.phases2_4 = ckpt["steps_phases2_4"][self.env.rank]
            switches = make_switches(ckpt["switches"], trainer.primitives)
            if not decisions[done].last:
                net = trainer.build(switches, seed=derive_seed(cfg.seed, "decision", done))
                net.load_state_dict(ckpt["model"])
                optimizer = trainer.make_optimizer(net, cfg.scaled_lr)
                optimizer.load_state_dict(ckpt["optimizer"])
            log.info("resuming after %s", decisions[done].label)
        t0 = time.time() - (ckpt["time_phases2_4"] if ckpt else 0.0)
        t_run = time.time()
        for decision in decisions[done + 1 :]:
            if self.env.is_main:
                write_state(
                    self.run_dir,
                    status="running",
                    method=self.method.name,
                    phase=decision.name,
                    decision=decision.number,
                    decisions=DECISION_COUNT,
                )
            seed = derive_seed(cfg.seed, "decision", decision.index)
            seed_all(seed)
            tic = time.time()
            entry: dict = {"decision": decision.number, "decisions": DECISION_COUNT, "name": decision.name}
            if decision.kind == START:
                switches, net, optimizer = self.method.start(self, phase1, seed=seed)
            else:
                if decision.kind == FINE:
                    switches = fine_decision(trainer, switches, net, optimizer, decision, entry)
                else:
                    switches = topology_decision(trainer, switches, net, decision, entry)
                net = trainer.build(switches, seed=seed, previous=net)
                if decision.last:  # no training after the last node
                    optimizer = trainer.make_optimizer(net, cfg.scaled_lr)
                else:
                    optimizer = trainer.train_stage(
                        net,
                        epochs=cfg.stage_epochs,
                        lr=cfg.scaled_lr / 2.5,
                        data_key=decision.index,
                        tag=decision.name,
                        parallel=True,
                    )
            if cfg.decision_parallel == "replicate":  # every rank computed the chain: rank 0's decides
                switches = D.broadcast_object(switches)
            entry["switches"] = to_lists(D.check_agreement(switches, f"the switches after {decision.name}"))
            entry["seconds"] = round(time.time() - tic, 2)
            history.append(entry)
            outcome = entry.get("outcome")
            log.info(
                "%s%s, done in %.0fs; %s",
                decision.label,
                f": {outcome}{' (random scores: a control)' if cfg.control else ''}" if outcome else "",
                entry["seconds"],
                eta(time.time() - t_run, decision.index - done, len(decisions) - 1 - decision.index),
            )
            save_checkpoint(
                self.run_dir,
                self.env,
                done=decision.index,
                switches=to_lists(switches),
                model=net.state_dict(),
                optimizer=optimizer.state_dict(),
                history=history,
                steps_by_rank=D.all_gather_object(trainer.steps.phases2_4),
                elapsed=time.time() - t0,
            )
            if not decision.last:
                stop.safe_point(
                    f"decision {decision.number}/{DECISION_COUNT} ({decision.name})",
                    self.run_dir,
                    device=self.env.device,
                )
        return switches, history, time.time() - t0

    def finish(
        self,
        switches: Switches,
        history: list,
        *,
        time_phase1: float,
        time_decisions: float,
        helper_peak_mb: tuple = (),
    ) -> None:
        """summary.json. Peak memory: a rank's is the largest of its processes' (the phase-1
        helpers included), each process's listed too (this one first)."""
        genotype = genotype_from_switches(switches)
        env = self.env
        # a resumed run counts the work of every process that contributed, not the dead time between
        wall = time_phase1 + time_decisions if self.resumed else time.time() - self.start_time
        gathered = D.all_gather_object(
            {
                "peak_memory_mb": [round(peak_memory_mb(env.device), 1), *helper_peak_mb],
                "steps": dict(vars(self.trainer.steps)),
            }
        )
        if env.is_main:
            save_genotype(self.run_dir / GENOTYPE, genotype)
            on_gpu = env.device.type == "cuda"
            measured = [d["acc_before"] for d in history if "acc_before" in d]
            summary = {
                "status": "finished",
                "method": self.method.name,
                # what decided: perturb-val, or random scores (a control run, not the method)
                "scores": self.cfg.scores,
                "seed": self.cfg.seed,
                "world_size": env.world_size,
                "device": str(env.device),
                "gpu_model": torch.cuda.get_device_name(env.device) if on_gpu else None,
                "wall_time_s": round(wall, 2),
                "time_phase1_s": round(time_phase1, 2),
                "time_phases2_4_s": round(time_decisions, 2),
                "gpu_hours": round(env.world_size * wall / 3600, 4) if on_gpu else 0.0,
                "peak_memory_mb": [max(g["peak_memory_mb"]) for g in gathered],
                "peak_memory_mb_per_process": [g["peak_memory_mb"] for g in gathered],
                "steps": {k: [g["steps"][k] for g in gathered] for k in ("phase1", "phases2_4")},
                # top-1 (%) of the last trained search network on the validation data (the
                # measurement before the last topology decision): ranks runs of one setting
                "val_acc": round(measured[-1], 4) if measured else None,
                "val_protocol": self.cfg.val_protocol,
                "data_label": self.data_label,
                "genotype": genotype_to_dict(genotype),
            }
            write_json(self.run_dir / SUMMARY, summary)
            write_state(self.run_dir, status="finished", method=self.method.name, phase="done")
            release_run_dirs()
        D.barrier()
        log.info("genotype = %s", format_literal(genotype))  # once: rank 0 logs to the terminal too
        log.info("run directory: %s", self.run_dir)
        log.info("report: python -m nas.report %s", self.run_dir)
        self.trainer.tb.close()
