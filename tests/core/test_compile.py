"""Compiled and captured training steps (nas.core.compile): the same numerics as eager, a
capture per network structure, and the modes a device cannot run refused."""

import random

import pytest
import torch
import torch.nn as nn

from nas.core.compile import CapturedModule, check_compile, optimizer_options, prepare, structure_key
from nas.core.engine import Precision, train
from nas.core.errors import UserError
from nas.evaluation.networks import NetworkCIFAR
from nas.genotype import load_genotype
from nas.search.network import SearchNetwork
from nas.space.switches import random_switches

CPU = torch.device("cpu")


def tiny_search_net():
    torch.manual_seed(0)
    return SearchNetwork(4, 10, 3, random_switches(2, random.Random(0)))


def batches(n=3, size=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 32, 32, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


def test_check_compile_refuses_what_the_device_cannot_run():
    check_compile("inductor", CPU)
    check_compile("graphs", torch.device("cuda"), perturb=True)
    with pytest.raises(UserError, match="--compile 'fast': expected one of off, graphs, inductor"):
        check_compile("fast", CPU)
    with pytest.raises(UserError, match="--compile graphs needs CUDA"):
        check_compile("graphs", CPU)
    with pytest.raises(UserError, match="--compile_perturb with --compile inductor: expected --compile graphs"):
        check_compile("inductor", CPU, perturb=True)


def test_fused_sgd_only_for_compiled_steps_on_cuda():
    assert optimizer_options(torch.device("cuda"), "graphs", scaler=False) == {"fused": True}
    assert optimizer_options(torch.device("cuda"), "off", scaler=False) == {}
    assert optimizer_options(CPU, "inductor", scaler=False) == {}


def test_off_is_the_network_itself():
    net = nn.Linear(3, 2)
    assert prepare(net, "off") is net
    wrapped = prepare(net, "off", wrap=nn.Sequential)
    assert isinstance(wrapped, nn.Sequential) and wrapped[0] is net


class FakeCapture:
    """Stands in for make_graphed_callables on the CPU: runs warm-up forwards as it does
    (updating BN statistics, drawing random numbers) and returns a counting forward."""

    def __init__(self):
        self.captured, self.replays = [], 0

    def __call__(self, net, sample):
        for _ in range(3):
            net(sample + torch.randn_like(sample))
        self.captured.append(structure_key(net))

        def graphed(x):
            self.replays += 1
            return net(x)

        return graphed


def test_a_capture_per_structure_and_eager_otherwise():
    net = tiny_search_net()
    fake = FakeCapture()
    model = CapturedModule(net, capture=fake)
    opt = torch.optim.SGD(net.parameters(), 0.1)
    p = Precision()
    run = lambda data: train(model, data, opt, nn.CrossEntropyLoss(), p, p.make_scaler(), progress=False)  # noqa: E731
    run(batches(2))
    edge, op = 0, net.switches[0][0]
    with net.switched_off(edge, op):
        run(batches(2))
    run(batches(2))  # back to the first structure: captured anew (the old capture was freed)
    assert len(fake.captured) == 3 and fake.replays == 6
    assert fake.captured[1][0][0] == (op,)  # the second capture saw the switched-off operation
    assert fake.captured[2] == fake.captured[0]
    run(batches(2))  # the same structure: replayed
    run(batches(1, size=3))  # a partial batch runs eagerly
    model.eval()
    model(torch.randn(4, 3, 32, 32))
    assert fake.replays == 8 and model.captures == 3


def test_capture_leaves_bn_statistics_and_random_numbers_as_eager():
    data = batches(2)
    eager_net = tiny_search_net()
    captured_net = tiny_search_net()
    model = CapturedModule(captured_net, capture=FakeCapture())
    p = Precision()
    for m, net in ((eager_net, eager_net), (model, captured_net)):
        torch.manual_seed(1)
        train(
            m,
            data,
            torch.optim.SGD(net.parameters(), 0.1, momentum=0.9),
            nn.CrossEntropyLoss(),
            p,
            p.make_scaler(),
            progress=False,
        )
        net.after = torch.rand(1)  # the random stream continues where eager's does
    for a, b in zip(eager_net.state_dict().values(), captured_net.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(eager_net.after, captured_net.after)


def test_drop_path_probability_is_a_tensor_the_network_reads():
    net = NetworkCIFAR(4, 10, 3, False, load_genotype("DARTS_V2"))
    assert "drop_prob_tensor" not in net.state_dict()  # checkpoints are unchanged
    net.drop_path_prob = 0.2
    assert net.drop_path_prob == 0.2 and net.drop_prob_tensor.item() == pytest.approx(0.2)
    assert structure_key(net) == ((), True)
    net.drop_path_prob = 0.0
    assert structure_key(net) == ((), False)


def step_grads(model, net, x, y):
    net.zero_grad(set_to_none=True)
    out = model(x)
    logits, aux = out if isinstance(out, tuple) else (out, None)
    loss = nn.functional.cross_entropy(logits, y)
    if aux is not None:  # the training loss with the auxiliary head, so every parameter gets a gradient
        loss = loss + 0.4 * nn.functional.cross_entropy(aux, y)
    loss.backward()
    return loss.detach(), {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}


@pytest.mark.slow
def test_inductor_step_matches_eager_and_does_not_recompile_per_epoch():
    """A compiled step of NetworkCIFAR with drop-path: same loss and gradients as eager (the
    masks drawn by torch's own generator), and a new drop-path probability is read, not
    compiled anew."""
    import torch._dynamo
    import torch._inductor.config
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    net = NetworkCIFAR(4, 10, 3, True, load_genotype("DARTS_V2")).train()
    compiled = prepare(net, "inductor")
    x, y = batches(1)[0]
    with torch._inductor.config.patch(fallback_random=True):
        for prob in (0.1, 0.2):
            net.drop_path_prob = prob
            torch.manual_seed(1)
            loss_e, grads_e = step_grads(net, net, x, y)
            torch.manual_seed(1)
            loss_c, grads_c = step_grads(compiled, net, x, y)
            assert torch.allclose(loss_e, loss_c, rtol=1e-4, atol=1e-5)
            assert grads_e.keys() == grads_c.keys()
            for k in grads_e:
                assert torch.allclose(grads_e[k], grads_c[k], rtol=1e-3, atol=1e-4), k
    assert counters["stats"]["unique_graphs"] == 1
