"""How a training step runs: eagerly, compiled by inductor, or replayed from CUDA graphs
(`--compile`; figures: benchmarks/bench_compile.py).

The networks are bound by kernel launches on a GPU: a step spends most of its time in
Python and in launching small kernels. Two ways out, picked by `--compile`:

- `inductor`: `torch.compile` of the network (fused kernels; compiles once per network
  structure, for training and for evaluation mode).
- `graphs`: the forward and backward of the network captured in CUDA graphs with
  `torch.cuda.make_graphed_callables` and replayed every step; the loss, the SGD step
  and the metrics stay outside the graph, so the learning rate is read anew every step.
  A capture belongs to one network structure (the switched-off operations of a search
  network, drop-path on or off): another structure captures anew (freeing the old
  capture) rather than replaying a graph of the wrong network; a batch of another shape
  (the last, partial one of an epoch) and evaluation run eagerly. Captures run in
  thread-local mode, so a loader's pin-memory thread cannot invalidate them, and a
  capture's private memory pool is freed when its stage or candidate ends (`release`).

tests/cuda_graphs.py is a CPU stand-in for CUDA graphs with which the tests run this
module's graphs mode on the CPU (recorded ops replayed, host syncs inside a capture flagged).

The drop-path probability lives in a tensor buffer of the evaluation networks, so neither
mode specialises on its value: a graph draws its masks from the CUDA generator at every
replay and reads the probability set for the epoch.
"""

from __future__ import annotations

import gc
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
    if mode == "graphs" and not graphs_available(device):
        raise UserError(f"--compile graphs needs CUDA (device {device}): use inductor or off on the CPU")
    if perturb and mode != "graphs":
        raise UserError(
            f"--compile_perturb with --compile {mode}: expected --compile graphs (inductor would "
            f"recompile for every candidate)"
        )


def graphs_available(device: torch.device) -> bool:
    """Whether `--compile graphs` can run on `device` (the tests' CPU stand-in says yes)."""
    return device.type == "cuda"


def optimizer_options(device: torch.device, mode: str, *, scaler: bool) -> dict:
    """SGD keyword arguments: with a compiled or captured step the optimizer is most of the
    remaining launches, so it runs as one fused kernel on CUDA; eager keeps PyTorch's default.
    Never fused with an enabled GradScaler (`scaler`): the fused kernel returns early on a
    step skipped for overflow, leaving momentum buffers made by `empty_like` uninitialised,
    and the next step applies garbage (tests/core/test_cuda_graphs.py reproduces it on the CPU)."""
    return {"fused": True} if mode != "off" and device.type == "cuda" and not scaler else {}


def prepare(net: nn.Module, mode: str, *, wrap: Optional[Callable[[nn.Module], nn.Module]] = None) -> nn.Module:
    """The module a training loop calls for `net` (whose parameters it shares). `wrap` (for
    example DDP) goes around the captured network, or inside the compiled one, as each
    mode needs: DDP's gradient hooks see the replayed backward's gradients, and dynamo
    splits the compiled graph at DDP's buckets."""
    wrap = wrap or (lambda m: m)
    if mode == "off":
        return wrap(net)
    if mode == "inductor":
        # Every stage compiles a new network with the same `forward`: without a reset dynamo
        # reaches its recompile limit (8) after a few stages and runs the rest eagerly, silently.
        torch._dynamo.reset()
        log.info("compiling %s with inductor (dynamo reset: a new network)", type(net).__name__)
        return torch.compile(wrap(net))
    if mode == "graphs":
        return wrap(CapturedModule(net))
    raise UserError(f"--compile {mode!r}: expected one of {', '.join(MODES)}")


def structure_key(net: nn.Module) -> tuple:
    """What a captured graph depends on besides the parameters: the switched-off operations
    of a search network and whether drop-path is on."""
    disabled = tuple(tuple(sorted(m.disabled)) for m in net.modules() if isinstance(getattr(m, "disabled", None), set))
    return disabled, getattr(net, "drop_path_prob", 0.0) > 0.0


def release(model: nn.Module) -> None:
    """Free the captures of `model` (a prepared module, DDP-wrapped or not) now: the graphed
    callables sit in reference cycles, so their private memory pools would wait for the
    cyclic collector. A no-op for the other modes."""
    captured = [m for m in model.modules() if isinstance(m, CapturedModule)]
    for m in captured:
        m.drop_capture()
    if captured:
        gc.collect()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()


class _TensorOutputs(nn.Module):
    """`net` whose forward returns only its output tensors, as a tuple: the graphed callable
    must not see a None (the evaluation networks' `(logits, None)` without the auxiliary
    head), which torch's pytree takes for a leaf. `rebuild` puts the Nones back."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.layout: Optional[tuple] = None  # None: a bare tensor; else a tuple's None positions

    def forward(self, x: torch.Tensor) -> tuple:
        out = self.net(x)
        if isinstance(out, tuple):
            self.layout = tuple(o is None for o in out)
            return tuple(o for o in out if o is not None)
        self.layout = None
        return (out,)

    def rebuild(self, tensors: tuple):
        if self.layout is None:
            return tensors[0]
        it = iter(tensors)
        return tuple(None if none else next(it) for none in self.layout)


def capture_cuda(net: nn.Module, sample: torch.Tensor) -> Callable:
    """The network's forward and backward as CUDA graphs (warm-up iterations on a side
    stream, then capture). Under autocast the capture must not cache casts. Thread-local
    capture mode: another thread's CUDA calls (a loader's pin-memory thread) neither
    invalidate the capture nor are refused."""
    device_type = sample.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
    tensors_only = _TensorOutputs(net)
    with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None, cache_enabled=False):
        # switched-off operations leave their parameters without gradients
        torch.cuda.make_graphed_callables(
            tensors_only, (sample,), allow_unused_input=True, capture_error_mode="thread_local"
        )
    # It replaced the wrapper's forward by the graphed one (the network stays eager for
    # everything else, and another structure is captured from the real forward).
    graphed = tensors_only.__dict__.pop("forward")
    return lambda x: tensors_only.rebuild(graphed(x))


class CapturedModule(nn.Module):
    """`net` whose training forward and backward replay captured graphs (see the module
    docstring). `capture(net, sample)` returns the graphed callable; capture_cuda on a GPU."""

    def __init__(self, net: nn.Module, capture: Callable[[nn.Module, torch.Tensor], Callable] = capture_cuda):
        super().__init__()
        self.net = net
        self._capture = capture
        self._key: Optional[tuple] = None
        self._graphed: Optional[Callable] = None
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
        if key != self._key:
            self.drop_capture()  # the old structure's pool goes before the new one is captured
            gc.collect()
            self._graphed, self._key = self._capture_keeping_state(x), key
        return self._graphed(x)

    def drop_capture(self) -> None:
        self._graphed = self._key = None

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
