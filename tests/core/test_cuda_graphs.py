"""`--compile graphs` on the CPU through the stand-in for CUDA graphs (tests/cuda_graphs.py):
a replayed step is bit-identical to an eager one, no capture holds an op a CUDA capture
refuses, and no capture outlives its stage; and the CUDA-only paths around it (fused SGD,
the GradScaler, the metrics' host syncs)."""

import gc
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from nas.core.compile import optimizer_options, prepare, release
from nas.core.engine import Meter, Precision, train
from nas.evaluation.networks import NetworkCIFAR, NetworkImageNet
from nas.genotype import load_genotype
from nas.search.perturb import PerturbData, perturb_val
from nas.space.switches import make_switches
from tests import cuda_graphs as fake
from tests.cuda_graphs import IllegalInCapture, cpu_cuda_graphs
from tests.search.test_perturb import Batches
from tests.search.test_perturb import setup as perturb_setup
from tests.search.test_stages import make_trainer

CPU = torch.device("cpu")


@pytest.fixture
def graphs():
    """The stand-in installed; automatic garbage collection off, so that a capture kept alive
    by a reference cycle shows as alive (as its CUDA memory pool would stay allocated)."""
    fake.CAPTURE_MODES.clear()
    gc.collect()
    gc.disable()
    try:
        with cpu_cuda_graphs():
            yield fake
    finally:
        gc.enable()


def batches(n=3, size=4, res=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, res, res, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


def run_steps(make_net, mode, data, *, aux_weight=0.0, drop_path=0.2, amp=None):
    torch.manual_seed(0)
    net = make_net().train()
    net.drop_path_prob = drop_path
    opt = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    p = Precision("cpu", amp)
    model = prepare(net, mode)
    torch.manual_seed(5)  # the drop-path masks
    res = train(
        model,
        data,
        opt,
        nn.CrossEntropyLoss(),
        p,
        p.make_scaler(),
        grad_clip=5.0,
        aux_weight=aux_weight,
        progress=False,
    )
    captures = getattr(model, "captures", 0)
    release(model)
    return res, {k: v.clone() for k, v in net.state_dict().items()}, captures


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------ the stand-in itself
def test_stand_in_replays_the_capture_on_new_inputs_and_stale_graphs_would_show(graphs):
    lin = nn.Linear(3, 2)
    x0 = torch.randn(4, 3)
    at_capture = x0.clone()
    graphed = torch.cuda.make_graphed_callables(lin, (x0,))
    x = torch.randn(4, 3)
    out = graphed(x)
    assert torch.equal(x0, x)  # the new input copied into the static one, as a CUDA graph's
    lin.__dict__.pop("forward")  # the eager module again
    assert torch.equal(out, lin(x)) and not torch.equal(out, lin(at_capture))
    out.sum().backward()
    w = lin.weight.grad.clone()
    lin.weight.grad = None
    lin(x).sum().backward()
    assert torch.equal(w, lin.weight.grad)


def test_stand_in_refuses_host_syncs_and_host_data_inside_a_capture(graphs):
    class Syncs(nn.Module):
        def __init__(self, how):
            super().__init__()
            self.lin, self.how = nn.Linear(3, 2), how

        def forward(self, x):
            y = self.lin(x)
            return y * y.sum().item() if self.how == "item" else y * torch.tensor(0.5)

    for how, message in (("item", "host sync"), ("tensor", "host data")):
        with pytest.raises(IllegalInCapture, match=message):
            torch.cuda.make_graphed_callables(Syncs(how), (torch.randn(4, 3),))


# ------------------------------------------------------------------ captured == eager
@pytest.mark.parametrize(
    "name, make_net, res, aux_weight",
    [
        ("cifar", lambda: NetworkCIFAR(4, 10, 3, False, load_genotype("DARTS_V2")), 32, 0.0),
        ("cifar+auxiliary", lambda: NetworkCIFAR(4, 10, 3, True, load_genotype("DARTS_V2")), 32, 0.4),
        ("imagenet", lambda: NetworkImageNet(4, 10, 3, False, load_genotype("DARTS_V2")), 224, 0.0),
    ],
)
def test_captured_steps_are_bit_identical_to_eager(graphs, name, make_net, res, aux_weight):
    """Without the auxiliary head the network returns (logits, None): the capture takes the
    tensors only and puts the None back (it crashed in make_graphed_callables' warm-up)."""
    data = batches(3, size=2 if res > 32 else 4, res=res)
    eager, eager_state, _ = run_steps(make_net, "off", data, aux_weight=aux_weight)
    captured, captured_state, captures = run_steps(make_net, "graphs", data, aux_weight=aux_weight)
    assert captures == 1 and captured == eager
    assert_same(eager_state, captured_state)
    assert fake.CAPTURE_MODES and set(fake.CAPTURE_MODES) == {"thread_local"}  # a loader thread cannot break it
    assert len(fake.LIVE) == 0


def test_captured_bf16_steps_are_bit_identical_to_eager(graphs):
    make_net = lambda: NetworkCIFAR(4, 10, 3, True, load_genotype("DARTS_V2"))  # noqa: E731
    data = batches(2)
    eager, eager_state, _ = run_steps(make_net, "off", data, aux_weight=0.4, amp=torch.bfloat16)
    captured, captured_state, _ = run_steps(make_net, "graphs", data, aux_weight=0.4, amp=torch.bfloat16)
    assert captured == eager
    assert_same(eager_state, captured_state)


def test_a_search_stage_captured_is_bit_identical_to_eager_and_frees_its_graphs(graphs):
    states = {}
    for mode in ("off", "graphs"):
        trainer = make_trainer(compile=mode)
        net = trainer.build(trainer_switches(), seed=3)
        torch.manual_seed(1)
        trainer.train_stage(net, epochs=2, lr=0.005, data_key=1, tag="stage", parallel=False)
        states[mode] = {k: v.clone() for k, v in net.state_dict().items()}
    assert_same(states["off"], states["graphs"])
    assert fake.CAPTURE_MODES  # it did capture
    assert len(fake.LIVE) == 0  # and the stage freed its graphs (no cyclic collection ran)


def trainer_switches():
    return make_switches([["skip_connect", "sep_conv_3x3", "max_pool_3x3"]] * 14)


def test_perturb_val_with_compile_perturb_is_bit_identical_and_keeps_no_capture(graphs):
    results = {}
    for name, prep in (("eager", None), ("graphs", lambda n: prepare(n, "graphs"))):
        net, opt, data = perturb_setup()
        cands = [(0, "skip_connect"), (0, "max_pool_3x3"), (9, None)]
        results[name] = perturb_val(net, opt, cands, data, finetune_steps=3, data_epoch=0, seed=7, prepare=prep)
        if name == "graphs":
            assert len(fake.LIVE) == 0  # each candidate's capture freed as it ends
    assert len(fake.CAPTURE_MODES) == 2 * 3  # forward and backward, per candidate
    assert results["graphs"].scores == results["eager"].scores
    assert results["graphs"].acc_before == results["eager"].acc_before


def test_a_new_structure_frees_the_old_capture(graphs):
    """The evaluation's drop-path goes from 0 (epoch 1) to > 0: the first capture must not
    stay allocated for the rest of the run."""
    net = NetworkCIFAR(4, 10, 3, True, load_genotype("DARTS_V2")).train()
    model = prepare(net, "graphs")
    opt = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9)
    p = Precision()
    for prob in (0.0, 0.1):
        net.drop_path_prob = prob
        train(model, batches(1), opt, nn.CrossEntropyLoss(), p, p.make_scaler(), aux_weight=0.4, progress=False)
    assert model.captures == 2
    assert len(fake.LIVE) == 2  # the current capture's forward and backward graphs only
    release(model)
    assert len(fake.LIVE) == 0


def _ddp_worker(rank, port, mode, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    with cpu_cuda_graphs():
        torch.manual_seed(0)
        net = NetworkCIFAR(4, 10, 3, True, load_genotype("DARTS_V2")).train()
        net.drop_path_prob = 0.2
        model = prepare(net, mode, wrap=DDP)
        opt = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9)
        p = Precision()
        torch.manual_seed(10 + rank)
        train(
            model, batches(2, seed=rank), opt, nn.CrossEntropyLoss(), p, p.make_scaler(), aux_weight=0.4, progress=False
        )
        release(model)
        live = len(fake.LIVE)
    if rank == 0:
        torch.save({"state": net.state_dict(), "live": live}, out)
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_on_two_gloo_processes_captured_is_bit_identical_to_eager(tmp_path):
    states = {}
    for mode in ("off", "graphs"):
        out = tmp_path / f"{mode}.pt"
        mp.start_processes(_ddp_worker, args=(_free_port(), mode, str(out)), nprocs=2, start_method="spawn", join=True)
        states[mode] = torch.load(out, weights_only=True)
    assert states["graphs"]["live"] == 0
    assert_same(states["off"]["state"], states["graphs"]["state"])


# ------------------------------------------------------------------ around the capture
def test_fused_sgd_is_never_used_with_an_enabled_grad_scaler():
    cuda = torch.device("cuda")
    assert optimizer_options(cuda, "graphs", scaler=False) == {"fused": True}
    assert optimizer_options(cuda, "inductor", scaler=True) == {}
    assert optimizer_options(cuda, "off", scaler=False) == {}
    assert optimizer_options(CPU, "graphs", scaler=False) == {}


def test_why_fused_sgd_with_a_scaler_corrupts_the_weights():
    """Torch's fused SGD on the CPU, as on CUDA: a step skipped for overflow (fp16 at the
    default scale 65536) leaves momentum buffers made by empty_like unset, and the next
    step applies them. The unfused optimizer under the same scaler stays finite."""
    finite = {}
    for fused in (False, True):
        torch.manual_seed(0)
        net = NetworkCIFAR(4, 10, 3, False, load_genotype("DARTS_V2")).train()
        opt = torch.optim.SGD(net.parameters(), 0.025, momentum=0.9, weight_decay=3e-4, fused=fused)
        p = Precision("cpu", torch.float16)
        scaler = p.make_scaler()
        try:
            train(net, batches(4, size=8), opt, nn.CrossEntropyLoss(), p, scaler, progress=False)
        except Exception:  # the loop's own check: the loss became NaN
            pass
        assert scaler.get_scale() < 65536.0  # steps were skipped for overflow
        finite[fused] = all(torch.isfinite(q).all() and q.abs().max() < 1e6 for q in net.parameters())
    assert finite == {False: True, True: False}


def test_perturb_val_starts_every_candidate_from_the_same_scaler_state(monkeypatch):
    """fp16 fine-tuning of the first candidates overflows and lowers the scale: the next
    candidate must not inherit it (its score would depend on the candidate order)."""
    import nas.search.perturb as perturb

    net, opt, data = perturb_setup()
    p = Precision("cpu", torch.float16)
    data = PerturbData(Batches(seed=1), Batches(seed=2), nn.CrossEntropyLoss(), p)
    seen = []
    real_train = perturb.train

    def spy(model, batches, optimizer, criterion, precision, scaler, **kw):
        seen.append(scaler.get_scale())
        res = real_train(model, batches, optimizer, criterion, precision, scaler, **kw)
        seen.append(scaler.get_scale())
        return res

    monkeypatch.setattr(perturb, "train", spy)
    cands = [(0, "skip_connect"), (0, "max_pool_3x3"), (9, None)]
    perturb_val(net, opt, cands, data, finetune_steps=3, data_epoch=0, seed=7)
    starts, ends = seen[0::2], seen[1::2]
    assert min(ends) < 65536.0  # the fine-tuning did overflow
    assert starts == [65536.0] * len(cands)


def test_meter_makes_no_host_tensor_and_no_host_sync_per_step():
    """Meter.update runs every step: a tensor from host data is a blocking copy to the GPU."""
    meter = Meter(CPU)
    loss, logits, target = torch.tensor(2.0), torch.randn(4, 10), torch.randint(0, 10, (4,))
    with fake.host_syncs_refused():
        for _ in range(3):
            meter.update(loss, logits, target)
    res = meter.result()  # a log point: the one transfer
    assert res["samples"] == 12 and res["loss"] == 2.0


def test_deterministic_flag_defaults(monkeypatch):
    from nas.evaluation.config import CifarEvalConfig
    from nas.search.config import EvolutionaryConfig

    assert EvolutionaryConfig().deterministic is True
    assert CifarEvalConfig().deterministic is False


def test_set_determinism_on_cuda_settings(monkeypatch):
    from nas.core import seeding

    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda on, warn_only: calls.append((on, warn_only)))
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    benchmark, deterministic = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    try:
        seeding.set_determinism(True, torch.device("cuda"))
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        assert calls == [(True, True)] and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        seeding.set_determinism(False, torch.device("cuda"))
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        assert calls[-1] == (False, True)
        calls.clear()
        seeding.set_determinism(True, CPU)  # the CPU's kernels are left as they are
        assert calls == []
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, deterministic


def test_inductor_resets_dynamo_for_every_network_and_says_so(monkeypatch, caplog):
    """A search compiles a new network per stage with the same forward: without a reset dynamo
    stops at its recompile limit (8) and runs the rest eagerly, silently."""
    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    with caplog.at_level("INFO", logger="nas"):
        for _ in range(3):
            prepare(nn.Linear(2, 2), "inductor")
    assert len(resets) == 3
    assert caplog.text.count("compiling Linear with inductor") == 3
