"""A CPU stand-in for CUDA graphs, so that `--compile graphs` code (nas/core/compile.py) runs
on the CPU in tests, through torch's own `make_graphed_callables`.

`cpu_cuda_graphs()` replaces what `make_graphed_callables` uses of CUDA: `torch.cuda.CUDAGraph`,
`torch.cuda.graph`, the graph pool handle, streams and `synchronize`, and lets
nas.core.compile accept `--compile graphs` on the CPU.

What it models:
- Capture records every aten op the capture runs (forward and, through the autograd engine,
  backward) with its arguments: the very tensors (static inputs, parameters, the capture's
  intermediates, which it keeps alive as a graph's private pool does), Python scalars and
  shapes baked in, branches taken once.
- Replay re-runs the recorded ops in order on those same tensors and writes each result into
  the tensor the capture produced, so a replay sees only what a CUDA graph sees: new values in
  the same tensors. Anything read on the host at capture time (a Python float, a branch, a
  shape) stays as it was, and a random op draws anew at every replay (on the CPU generator, in
  the order eager draws, so a replay is bit-identical to an eager step).
- Inside a capture, an op that a CUDA capture refuses or that silently breaks it raises
  `IllegalInCapture`: a host sync (`.item()`, `.tolist()`, a tensor's truth value, `nonzero`,
  `equal`), a tensor made from host data (`torch.tensor(...)`), `torch.cuda.synchronize()`.
- `LIVE` holds every stand-in graph not yet freed (weakly), so a test can check that no
  capture outlives its stage; `CAPTURE_MODES` lists the `capture_error_mode` of each capture.

What it does not model: device memory and its pools (a capture's tensors are ordinary CPU
tensors), streams and their ordering (everything runs on the CPU in order), the global
capture mode's effect on other threads (only the mode asked for is recorded), copies between
host and device (on the CPU `.cpu()` and `.to("cpu")` are no-ops it cannot see), kernels that
behave differently on CUDA (cuDNN algorithms, fused optimizers), and a CUDA generator's
per-replay offsets (random numbers come from the CPU generator).
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import torch
import torch.cuda.graphs as torch_graphs
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import nas.core.compile as nas_compile

aten = torch.ops.aten


class IllegalInCapture(AssertionError):
    """An op inside a capture that a CUDA graph capture cannot hold."""


ILLEGAL = {
    aten._local_scalar_dense.default: "a host sync (.item(), .tolist(), a tensor's truth value)",
    aten.item.default: "a host sync (.item())",
    aten.lift_fresh.default: "a tensor made from host data (torch.tensor)",
    aten.lift_fresh_copy.default: "a tensor made from host data (torch.tensor)",
    aten.nonzero.default: "a host sync (nonzero's output size)",
    aten.equal.default: "a host sync (torch.equal)",
    aten.is_nonzero.default: "a host sync (a tensor's truth value)",
}
# allocations: their values are undefined, a replay need not redo them
ALLOCATIONS = {
    aten.empty.memory_format,
    aten.empty_like.default,
    aten.empty_strided.default,
    aten.new_empty.default,
    aten.new_empty_strided.default,
}

LIVE: "weakref.WeakSet[FakeCUDAGraph]" = weakref.WeakSet()
CAPTURE_MODES: list[str] = []
_capturing = threading.local()


class _Recorder(TorchDispatchMode):
    def __init__(self, graph: "FakeCUDAGraph"):
        super().__init__()
        self.graph = graph

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in ILLEGAL:
            raise IllegalInCapture(f"{func} inside a CUDA graph capture: {ILLEGAL[func]}")
        out = func(*args, **kwargs)
        self.graph.ops.append((func, args, kwargs, out))
        return out


class _Refuser(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in ILLEGAL:
            raise IllegalInCapture(f"{func} where no host sync may be: {ILLEGAL[func]}")
        return func(*args, **(kwargs or {}))


def host_syncs_refused():
    """Within: the ops a capture refuses raise outside a capture too (code that runs every
    step, such as the loop's metrics, must not sync with the host either)."""
    return _Refuser()


class FakeCUDAGraph:
    """torch.cuda.CUDAGraph on the CPU: the ops of a capture, replayed on the same tensors."""

    def __init__(self, keep_graph: bool = False):
        self.ops: list = []
        self._recorder = None
        LIVE.add(self)

    def capture_begin(self, pool=None, capture_error_mode: str = "global", **_):
        CAPTURE_MODES.append(capture_error_mode)
        self._recorder = _Recorder(self)
        self._recorder.__enter__()
        _capturing.on = True

    def capture_end(self):
        self._recorder.__exit__(None, None, None)
        self._recorder = None
        _capturing.on = False

    def replay(self):
        # the recorded ops are aten ops after autocast and below autograd: neither again
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            for func, args, kwargs, out in self.ops:
                if func.is_view or func in ALLOCATIONS:
                    continue  # a view aliases a recorded tensor: it sees the new values itself
                new = func(*args, **kwargs)
                for recorded, got in zip(tree_leaves(out), tree_leaves(new)):
                    if isinstance(recorded, torch.Tensor) and recorded is not got:
                        recorded.copy_(got)

    def reset(self):
        self.ops = []

    def pool(self):
        return None


class fake_graph:
    """torch.cuda.graph on the CPU."""

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode: str = "global", **_):
        self.cuda_graph, self.capture_error_mode = cuda_graph, capture_error_mode

    def __enter__(self):
        self.cuda_graph.capture_begin(capture_error_mode=self.capture_error_mode)

    def __exit__(self, *exc):
        self.cuda_graph.capture_end()


class _Stream:
    def synchronize(self):
        pass


def _synchronize(device=None):
    if getattr(_capturing, "on", False):
        raise IllegalInCapture("torch.cuda.synchronize() inside a CUDA graph capture")


@contextlib.contextmanager
def cpu_cuda_graphs():
    """Within: make_graphed_callables captures and replays with the stand-in, on the CPU,
    and nas.core.compile runs `--compile graphs` there."""
    patches = [
        (torch.cuda, "CUDAGraph", FakeCUDAGraph),
        (torch.cuda, "graph", fake_graph),
        (torch.cuda, "Stream", _Stream),
        (torch.cuda, "stream", lambda stream=None: contextlib.nullcontext()),
        (torch.cuda, "synchronize", _synchronize),
        (torch_graphs, "graph_pool_handle", lambda: None),
        (nas_compile, "graphs_available", lambda device: True),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    for obj, name, value in patches:
        setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
