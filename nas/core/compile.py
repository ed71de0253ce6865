"""How a training step runs: eagerly, compiled by inductor, or replayed from CUDA graphs
(`--compile`; figures: benchmarks/bench_compile.py).

The networks are bound by kernel launches on a GPU: a step spends most of its time in
Python and in launching small kernels. Two ways out, picked by `--compile`:

- `inductor`: `torch.compile` of the network (fused kernels; compiles once per network
  structure, for training and for evaluation mode).
- `graphs`: the forward and backward of the network captured in CUDA graphs with
  `torch.cuda.make_graphed_callables` and replayed every step; the loss, the fused SGD
  step and the metrics stay outside the graph, so the learning rate is read anew every
  step. A capture is cached by network structure (the switched-off operations of a search
  network, drop-path on or off), so switching an operation off captures anew rather than
  replaying a graph of the wrong network; a batch of another shape (the last, partial one
  of an epoch) and evaluation run eagerly.

The drop-path probability lives in a tensor buffer of the evaluation networks, so neither
mode specialises on its value: a graph draws its masks from the CUDA generator at every
replay and reads the probability set for the epoch.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

import torch
import torch.nn as nn

from nas.core.errors import UserError

log = logging.getLogger("nas")

MODES = ("off", "graphs", "inductor")


def check_compile(mode: str, device: torch.device, *, perturb: bool = False) -> None:
    """Refuse a mode this device cannot run, before anything is built. `perturb`: also for
    perturb-val's fine-tuning, where every candidate is another network structure: graphs
    only, whose capture takes a few steps' time, not a compile's."""
    if mode not in MODES:
        raise UserError(f"--compile {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "graphs" and device.type != "cuda":
        raise UserError(f"--compile graphs needs CUDA (device {device}): use inductor or off on the CPU")
    if perturb and mode != "graphs":
        raise UserError(
            f"--compile_perturb with --compile {mode}: expected --compile graphs (inductor would "
            f"recompile for every candidate)"
        )


def optimizer_options(device: torch.device, mode: str) -> dict:
    """SGD keyword arguments: with a compiled or captured step the optimizer is most of the
    remaining launches, so it runs as one fused kernel on CUDA; eager keeps PyTorch's default."""
    return {"fused": True} if mode != "off" and device.type == "cuda" else {}


def prepare(net: nn.Module, mode: str, *, wrap: Optional[Callable[[nn.Module], nn.Module]] = None) -> nn.Module:
    """The module a training loop calls for `net` (whose parameters it shares). `wrap` (for
    example DDP) goes around the captured network, or inside the compiled one, as each
    mode needs: DDP's gradient hooks see the replayed backward's gradients, and dynamo
    splits the compiled graph at DDP's buckets."""
    wrap = wrap or (lambda m: m)
    if mode == "off":
        return wrap(net)
    if mode == "inductor":
        return torch.compile(wrap(net))
    if mode == "graphs":
        return wrap(CapturedModule(net))
    raise UserError(f"--compile {mode!r}: expected one of {', '.join(MODES)}")


def structure_key(net: nn.Module) -> tuple:
    """What a captured graph depends on besides the parameters: the switched-off operations
    of a search network and whether drop-path is on."""
    disabled = tuple(tuple(sorted(m.disabled)) for m in net.modules() if isinstance(getattr(m, "disabled", None), set))
    return disabled, getattr(net, "drop_path_prob", 0.0) > 0.0


def capture_cuda(net: nn.Module, sample: torch.Tensor) -> Callable:
    """The network's forward and backward as CUDA graphs (warm-up iterations on a side
    stream, then capture). Under autocast the capture must not cache casts."""
    device_type = sample.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
    with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None, cache_enabled=False):
        # switched-off operations leave their parameters without gradients
        torch.cuda.make_graphed_callables(net, (sample,), allow_unused_input=True)
    # It replaced net.forward by the graphed one: take that back, so the network stays eager
    # for everything else and another structure is captured from the real forward.
    return net.__dict__.pop("forward")


class CapturedModule(nn.Module):
    """`net` whose training forward and backward replay captured graphs (see the module
    docstring). `capture(net, sample)` returns the graphed callable; capture_cuda on a GPU."""

    def __init__(self, net: nn.Module, capture: Callable[[nn.Module, torch.Tensor], Callable] = capture_cuda):
        super().__init__()
        self.net = net
        self._capture = capture
        self._graphs: dict = {}
        self._shape: Optional[tuple] = None
        self.capture_seconds = 0.0
        self.captures = 0

    def forward(self, x: torch.Tensor):
        if not (self.training and torch.is_grad_enabled()):
            return self.net(x)
        if self._shape is None:
            self._shape = (tuple(x.shape), x.dtype, x.stride())
        elif (tuple(x.shape), x.dtype, x.stride()) != self._shape:
            return self.net(x)  # the partial last batch: one eager step is cheaper than a capture
        key = (structure_key(self.net), torch.is_autocast_enabled(x.device.type))
        graphed = self._graphs.get(key)
        if graphed is None:
            graphed = self._graphs[key] = self._capture_keeping_state(x)
        return graphed(x)

    def _capture_keeping_state(self, x: torch.Tensor) -> Callable:
        """Capture without a trace on the step's numerics: the warm-up and capture forwards
        update the BN statistics and draw random numbers, so both are put back."""
        tic = time.perf_counter()
        buffers = [b.detach().clone() for b in self.net.buffers()]
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state(x.device) if x.is_cuda else None
        graphed = self._capture(self.net, x.detach().clone())
        with torch.no_grad():
            for b, saved in zip(self.net.buffers(), buffers):
                b.copy_(saved)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, x.device)
        seconds = time.perf_counter() - tic
        self.capture_seconds += seconds
        self.captures += 1
        log.info("captured the training step in CUDA graphs in %.1f s (capture %d)", seconds, self.captures)
        return graphed
