"""The search driver shared by both searches: run directory, resume, training stages and
the sequence of decisions (SPEC §5.2-5.5 and §6).

After the start (phase 1 of the evolutionary search, or supernet pre-training) the search
is a list of decisions, each ending with a checkpoint: the switches, the trained weights and
the optimizer. A resumed run loads the last checkpoint and continues with the next decision;
every decision seeds itself from the run seed and its index, so a resumed run ends with the
genotype of an uninterrupted one.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from . import distributed as D
from .config import from_dict, to_dict
from .data import DataConfig, build_search_loaders
from .engine import Precision, train
from .errors import UserError
from .genotype import format_literal, genotype_from_switches, genotype_to_dict, save_genotype
from .io import torch_save, write_json, write_yaml
from .perturb import PerturbData, perturb_val
from .rundir import elastic_restart, eta, new_run_dir, peak_memory_mb, setup_logging, tensorboard, write_state
from .runs import read_state
from .search_config import RUNTIME_KEYS, SearchConfig
from .search_model import SearchNetwork, inherit_weights
from .seeding import derive_seed, seed_all
from .selection import check_topology_ready, fine_select, topology_node_order, topology_select
from .space import FINE_EDGE_ORDER, edges_of_node, primitives
from .switches import Switches, make_switches, to_lists

log = logging.getLogger("nas")
CHECKPOINT = "checkpoints/last.pt"


def decision_names(first: str, seed: int) -> list[str]:
    """`first` (coarse or pretrain), the 14 fine edge decisions, the 3 topology decisions."""
    return [first] + [f"fine_edge{e}" for e in FINE_EDGE_ORDER] + [f"topology_node{n}" for n in topology_node_order(seed)]


class SearchRun:
    """Everything a search needs for its whole life: processes, data, run directory, counters."""

    def __init__(self, cfg: SearchConfig, method: str, given: Optional[dict] = None,
                 check: Optional[Callable[["SearchRun"], None]] = None):
        """`check(run)` validates method-specific flags once the processes are known."""
        self.method = method
        self.given = given or {}
        self.env = D.init_distributed(cfg.cluster, cfg.device, force=cfg.distributed)
        self.cfg, resume_dir = self._resolve_config(cfg)
        if check is not None:
            check(self)
        self.primitives = primitives(self.cfg.extra_ops)
        self.precision = Precision.choose(self.env.device, self.cfg.amp)
        self.criterion = nn.CrossEntropyLoss().to(self.env.device)
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        if self.env.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        data_cfg = DataConfig(root=self.cfg.train_path, dataset="cifar100" if self.cfg.cifar100 else "cifar10",
                              loader=self.cfg.loader, workers=self.cfg.workers, val_size=self.cfg.val_size,
                              val_protocol=self.cfg.val_protocol, split_seed=self.cfg.split_seed,
                              train_subset=self.cfg.train_subset, cutout=8)
        self.data = build_search_loaders(data_cfg, self.cfg.batch_size, self.env.rank, self.env.world_size,
                                         self.env.device, channels_last=self.cfg.channels_last,
                                         amp=self.precision.dtype is not None, seed=self.cfg.seed)
        self.num_classes = self.data.num_classes
        # bad flags and bad data have failed by now: only then is a run directory made
        self.resumed = resume_dir is not None
        self.run_dir = resume_dir if self.resumed else self._new_run_dir()
        setup_logging(self.run_dir, self.env.rank)
        self.tb = tensorboard(self.run_dir, self.env.rank)
        self.perturb_data = PerturbData(self.data.train_full, self.data.val, self.criterion, self.precision,
                                        max_eval_steps=1 if self.cfg.fast else None)
        self.steps = {"phase1": 0, "phases2_4": 0}
        self.start_time = time.time()
        log.info("%s search in %s (%s, world size %d, device %s, %s loader, lr %.4g for batch %d)", method,
                 self.run_dir, "resumed" if self.resumed else "new run", self.env.world_size, self.env.device,
                 self.data.backend, self.cfg.scaled_lr, self.cfg.batch_size)

    # ---------------------------------------------------------------- run directory
    def _resolve_config(self, cfg: SearchConfig) -> tuple[SearchConfig, Optional[Path]]:
        """The configuration to run and, when resuming, the run directory."""
        resume = cfg.resume
        if resume is None and elastic_restart():
            resume = D.broadcast_object(find_resumable(cfg, self.method) if self.env.is_main else None)
        if resume is None:
            return cfg, None
        run_dir = Path(resume)
        saved = check_resumable(run_dir, self.method)
        bad = mismatched_keys(saved, self.given)
        if bad:
            raise UserError(f"--resume {run_dir}: {', '.join(f'--{k} {self.given[k]} (run has {saved[k]})' for k in bad)}"
                            f": a run continues with its own configuration")
        # the run's own configuration; only where/how it runs may be given anew (--train_path, --workers, ...)
        runtime = {k: v for k, v in self.given.items() if k in RUNTIME_KEYS}
        cfg = from_dict(type(cfg), {**saved, **runtime, "resume": str(run_dir)}, source=str(run_dir / "config.yaml"))
        return cfg, run_dir

    def _new_run_dir(self) -> Path:
        run_dir = new_run_dir(self.cfg.save, "search", self.cfg.note)
        if self.env.is_main:
            write_yaml(run_dir / "config.yaml", {"method": self.method, **to_dict(self.cfg)})
            write_state(run_dir, status="running", method=self.method, phase="start")
        D.barrier()
        return run_dir

    # ---------------------------------------------------------------- networks and training
    def build(self, switches: Switches, seed: int, previous: Optional[nn.Module] = None) -> SearchNetwork:
        seed_all(seed)  # same initial weights on every rank (DDP also broadcasts them)
        net = SearchNetwork(self.cfg.init_channels, self.num_classes, self.cfg.layers, switches,
                            primitives=self.primitives)
        if previous is not None and self.cfg.inherit_weights:
            inherit_weights(net, previous)
        return net.to(self.env.device, memory_format=self.memory_format)

    def make_optimizer(self, net: nn.Module, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(net.parameters(), lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)

    def train_stage(self, net: SearchNetwork, epochs: int, lr: float, data_key: int, tag: str,
                    data_parallel: bool, counter: str) -> torch.optim.Optimizer:
        """Train `net` for `epochs` with cosine annealing from `lr` to the floor.

        Data parallel over all ranks (phases 2-4), or on this rank alone (phase 1 models)."""
        optimizer = self.make_optimizer(net, lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1),
                                                               eta_min=self.cfg.learning_rate_min)
        parallel = data_parallel and self.env.world_size > 1
        model = DDP(net, device_ids=[self.env.device] if self.env.device.type == "cuda" else None) if parallel else net
        loader = self.data.train_shard if parallel else self.data.train_full
        scaler = self.precision.make_scaler()
        for epoch in range(epochs):
            loader.set_epoch(data_key * 1000 + epoch)
            try:
                res = train(model, loader, optimizer, self.criterion, self.precision, scaler,
                            steps=1 if self.cfg.fast else None, grad_clip=self.cfg.grad_clip or None,
                            log_every=self.cfg.log_every, desc=f"{tag} ep{epoch + 1}/{epochs}",
                            progress=self.cfg.progress)
            except torch.OutOfMemoryError:
                raise UserError(f"out of GPU memory training {tag} with --batch_size {self.cfg.batch_size} "
                                f"({self.cfg.batch_size // self.env.world_size if parallel else self.cfg.batch_size} per process), "
                                f"--init_channels {self.cfg.init_channels}, --layers {self.cfg.layers}: "
                                f"lower the batch size or the channels") from None
            self.steps[counter] += res["steps"]
            log.info("%s epoch %d/%d lr %.4g train loss %.4f top1 %.2f", tag, epoch + 1, epochs,
                     optimizer.param_groups[0]["lr"], res["loss"], res["top1"])
            scheduler.step()
        if parallel:
            D.broadcast_buffers(net)  # BN statistics: identical networks on every rank
        return optimizer

    def perturb(self, net: SearchNetwork, optimizer, candidates, steps: int, key, split: bool, counter: str):
        fast_steps = min(steps, 1) if self.cfg.fast else steps

        def count(n: int) -> None:
            self.steps[counter] += n

        return perturb_val(net, optimizer, candidates, self.perturb_data, fast_steps,
                           data_epoch=derive_seed(self.cfg.seed, "perturb-data", key) % 10**6,
                           seed=derive_seed(self.cfg.seed, "perturb", key), split_over_ranks=split, on_steps=count,
                           progress=False)  # a line per candidate is logged instead

    # ---------------------------------------------------------------- decisions (phases 2-4)
    def run_decisions(self, first: str, start: Callable[[], tuple[Switches, SearchNetwork, torch.optim.Optimizer]]):
        """Run `first` (which returns trained switches, network, optimizer) then the fine and
        topology decisions, checkpointing after each; resume from the last checkpoint."""
        names = decision_names(first, self.cfg.seed)
        ckpt = self._load_checkpoint()
        if ckpt is None:
            done, history = -1, []
        else:
            done, history = ckpt["done"], ckpt["history"]
            saved_steps = ckpt["steps_phases2_4"]
            if len(saved_steps) == self.env.world_size:
                self.steps["phases2_4"] = saved_steps[self.env.rank]
            log.info("resuming after decision %d (%s)", done, names[done])
        t0 = time.time() - (ckpt["time_phases2_4"] if ckpt else 0.0)
        net = optimizer = None
        switches = make_switches(ckpt["switches"], self.primitives) if ckpt else None
        if ckpt is not None and done < len(names) - 1:
            net = self.build(switches, derive_seed(self.cfg.seed, "decision", done))
            net.load_state_dict(ckpt["model"])
            optimizer = self.make_optimizer(net, self.cfg.scaled_lr)
            optimizer.load_state_dict(ckpt["optimizer"])
        t_run = time.time()
        for index in range(done + 1, len(names)):
            name = names[index]
            if self.env.is_main:
                write_state(self.run_dir, status="running", method=self.method, phase=name, decision=index)
            seed_all(derive_seed(self.cfg.seed, "decision", index))
            tic = time.time()
            entry: dict = {"decision": index, "name": name}
            if index == 0:
                switches, net, optimizer = start()
            else:
                if name.startswith("fine_edge"):
                    switches = self.fine_decision(switches, net, optimizer, index, int(name.removeprefix("fine_edge")), entry)
                else:
                    switches = self.topology_decision(switches, net, optimizer, index, int(name.removeprefix("topology_node")), entry)
                net = self.build(switches, derive_seed(self.cfg.seed, "decision", index), previous=net)
                if index < len(names) - 1:
                    optimizer = self.train_stage(net, self.cfg.stage_epochs, self.cfg.scaled_lr / 2.5, index, name,
                                                 True, "phases2_4")
                else:  # no training after the last node (SPEC §5.4)
                    optimizer = self.make_optimizer(net, self.cfg.scaled_lr)
            entry["switches"] = to_lists(D.check_agreement(switches, f"the switches after {name}"))
            entry["seconds"] = round(time.time() - tic, 2)
            history.append(entry)
            log.info("%d/%d decisions done (%s in %.0fs); %s", index + 1, len(names), name, entry["seconds"],
                     eta(time.time() - t_run, index - done, len(names) - 1 - index))
            self._save_checkpoint(index, switches, net, optimizer, history, time.time() - t0)
        self.time_phases2_4 = time.time() - t0
        return switches, history

    def scores(self, net, optimizer, candidates, phase: int, index: int, entry: dict) -> dict:
        """perturb-val of `candidates` split over the ranks, with F = finetune_steps + the phase's extra."""
        steps = self.cfg.finetune_steps + self.cfg.finetune_extra[phase - 1]
        res = self.perturb(net, optimizer, candidates, steps, ("decision", index), True, "phases2_4")
        entry["acc_before"] = res.acc_before
        for (edge, op), score in res.scores.items():
            self.tb.add_scalar(f"perturb/{entry['name']}/edge{edge}" + (f"/{op}" if op else ""), score, index)
        return res.scores

    def fine_decision(self, switches: Switches, net, optimizer, index: int, edge: int, entry: dict) -> Switches:
        """SPEC §5.3: keep the operation of `edge` whose removal hurts most."""
        ops = switches[edge]
        if len(ops) > 1:
            scores = self.scores(net, optimizer, [(edge, op) for op in ops], 2, index, entry)
            entry["scores"] = {op: scores[(edge, op)] for op in ops}
            switches = fine_select(switches, edge, entry["scores"], self.primitives)
        entry["selected"] = switches[edge][0] if switches[edge] else None
        log.info("decision %d: edge %d keeps %s", index, edge, entry["selected"])
        return switches

    def topology_decision(self, switches: Switches, net, optimizer, index: int, node: int, entry: dict) -> Switches:
        """SPEC §5.4: keep the two incoming edges of `node` whose removal hurts most."""
        check_topology_ready(switches, node)
        edges = list(edges_of_node(node))
        scores = self.scores(net, optimizer, [(e, None) for e in edges], 3, index, entry)
        edge_scores = {e: scores[(e, None)] for e in edges}
        switches = topology_select(switches, node, edge_scores, self.primitives)
        entry["scores"] = {str(e): s for e, s in edge_scores.items()}
        entry["kept_edges"] = [e for e in edges if switches[e]]
        log.info("decision %d: node %d keeps edges %s", index, node, entry["kept_edges"])
        return switches

    # ---------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, done, switches, net, optimizer, history, elapsed) -> None:
        steps_by_rank = D.all_gather_object(self.steps["phases2_4"])
        if self.env.is_main:
            torch_save(self.run_dir / CHECKPOINT, {
                "done": done, "switches": to_lists(switches), "model": net.state_dict(),
                "optimizer": optimizer.state_dict(), "history": history,
                "steps_phases2_4": steps_by_rank, "time_phases2_4": elapsed,
            })
            write_json(self.run_dir / "decisions.json", history)
        D.barrier()

    def _load_checkpoint(self) -> Optional[dict]:
        path = self.run_dir / CHECKPOINT
        if not path.is_file():
            return None
        return torch.load(path, map_location=self.env.device, weights_only=False)

    # ---------------------------------------------------------------- outputs
    def finish(self, switches: Switches, history: list, time_phase1: float) -> None:
        genotype = genotype_from_switches(switches)
        # a resumed run counts the work of every process that contributed, not the dead time between
        wall = time_phase1 + self.time_phases2_4 if self.resumed else time.time() - self.start_time
        gathered = D.all_gather_object({"rank": self.env.rank, "peak_memory_mb": round(peak_memory_mb(self.env.device), 1),
                                        "steps": dict(self.steps)})
        if self.env.is_main:
            save_genotype(self.run_dir / "genotype.json", genotype)
            on_gpu = self.env.device.type == "cuda"
            measured = [d["acc_before"] for d in history if "acc_before" in d]
            summary = {
                "status": "finished", "method": self.method, "seed": self.cfg.seed,
                "world_size": self.env.world_size, "device": str(self.env.device),
                "gpu_model": torch.cuda.get_device_name(self.env.device) if on_gpu else None,
                "wall_time_s": round(wall, 2),
                "time_phase1_s": round(time_phase1, 2), "time_phases2_4_s": round(self.time_phases2_4, 2),
                "gpu_hours": round(self.env.world_size * wall / 3600, 4) if on_gpu else 0.0,
                "peak_memory_mb": [g["peak_memory_mb"] for g in gathered],
                "steps": {k: [g["steps"][k] for g in gathered] for k in ("phase1", "phases2_4")},
                # top-1 (%) of the last trained search network on the validation data (the
                # measurement before the last topology decision): ranks runs of one setting
                "val_acc": round(measured[-1], 4) if measured else None,
                "val_protocol": self.cfg.val_protocol,
                "genotype": genotype_to_dict(genotype),
            }
            write_json(self.run_dir / "summary.json", summary)
            write_state(self.run_dir, status="finished", method=self.method, phase="done")
        D.barrier()
        log.info("genotype = %s", format_literal(genotype))
        log.info("run directory: %s", self.run_dir)
        if self.env.is_main:
            print(f"genotype = {format_literal(genotype)}")
        self.tb.close()


def check_resumable(run_dir: Path, method: str) -> dict:
    """The saved config of `run_dir`, after checking that it is a run of this search whose
    configuration matches every explicitly differing flag."""
    config_path = run_dir / "config.yaml"
    if not run_dir.is_dir() or not config_path.is_file():
        raise UserError(f"--resume {run_dir}: not a search run directory (expected {config_path})")
    import yaml

    saved = yaml.safe_load(config_path.read_text()) or {}
    saved_method = saved.pop("method", None)
    if saved_method != method:
        raise UserError(f"--resume {run_dir}: it is a {saved_method} search, not {method}")
    state = read_state(run_dir) or {}
    if state.get("status") == "finished":
        raise UserError(f"--resume {run_dir}: the search already finished (see {run_dir / 'genotype.json'})")
    return saved


def mismatched_keys(saved: dict, given: dict) -> list[str]:
    """Explicitly given flags that differ from the saved run's configuration."""
    return sorted(k for k, v in given.items() if k not in RUNTIME_KEYS and k in saved and saved[k] != _plain(v))


def _plain(v):
    return list(v) if isinstance(v, tuple) else v


def find_resumable(cfg: SearchConfig, method: str) -> Optional[str]:
    """After an elastic restart: the newest unfinished run of this note with the same config."""
    import yaml

    mine = {k: _plain(v) for k, v in to_dict(cfg).items() if k not in RUNTIME_KEYS}
    for run_dir in sorted(Path(cfg.save).glob(f"search-{cfg.note}-*"), key=lambda p: p.stat().st_mtime, reverse=True):
        state = read_state(run_dir) or {}
        if state.get("status") != "running" or not (run_dir / "config.yaml").is_file():
            continue
        saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        if saved.get("method") == method and all(_plain(saved.get(k)) == v for k, v in mine.items()):
            return str(run_dir)
    return None

