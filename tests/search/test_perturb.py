import torch
import torch.nn as nn

from nas.core.engine import Precision, train
from nas.search.network import SearchNetwork
from nas.search.perturb import PerturbData, Snapshot, perturb_val
from nas.space.switches import make_switches


class Batches:
    """A tiny deterministic loader with set_epoch, like the project's loaders."""

    def __init__(self, n=4, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.data = [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return iter(self.data)


def setup(off_ops="skip"):
    torch.manual_seed(0)
    sw = make_switches([["skip_connect", "sep_conv_3x3", "max_pool_3x3"]] * 14)
    net = SearchNetwork(4, 10, 2, sw, off_ops=off_ops)
    opt = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9, weight_decay=3e-4)
    p = Precision()
    train(net, Batches(), opt, nn.CrossEntropyLoss(), p, p.make_scaler(), progress=False)
    data = PerturbData(Batches(seed=1), Batches(seed=2), nn.CrossEntropyLoss(), p)
    return net, opt, data


def state(net, opt):
    return (
        {k: v.clone() for k, v in net.state_dict().items()},
        {k: {n: t.clone() for n, t in s.items()} for k, s in opt.state_dict()["state"].items()},
    )


def test_perturb_val_restores_weights_and_optimizer_exactly():
    net, opt, data = setup()
    before_model, before_opt = state(net, opt)
    res = perturb_val(net, opt, [(3, "sep_conv_3x3"), (3, None)], data, finetune_steps=3, data_epoch=0, seed=1)
    assert set(res.scores) == {(3, "sep_conv_3x3"), (3, None)}
    assert 0.0 <= res.acc_before <= 100.0
    after_model, after_opt = state(net, opt)
    assert all(torch.equal(before_model[k], after_model[k]) for k in before_model)
    assert all(torch.equal(before_opt[k][n], after_opt[k][n]) for k in before_opt for n in before_opt[k])


def test_switched_off_candidate_is_not_run_during_finetuning_or_evaluation():
    net, opt, data = setup()
    calls = []
    for cell in net.cells:
        cell.edges[5].ops["sep_conv_3x3"].register_forward_hook(lambda *a: calls.append(1))
    perturb_val(net, opt, [(5, "sep_conv_3x3")], data, finetune_steps=2, data_epoch=0, seed=1)
    # only the acc_before evaluation runs it: 4 batches x 2 cells
    assert len(calls) == 4 * 2


def test_scores_do_not_depend_on_candidate_order():
    net, opt, data = setup()
    cands = [(e, op) for e in (0, 9) for op in ("skip_connect", "max_pool_3x3")]
    a = perturb_val(net, opt, cands, data, finetune_steps=2, data_epoch=0, seed=7)
    b = perturb_val(net, opt, list(reversed(cands)), data, finetune_steps=2, data_epoch=0, seed=7)
    assert a.scores == b.scores and a.acc_before == b.acc_before


def test_snapshot_is_not_aliased_by_later_steps():
    net, opt, data = setup()
    snap = Snapshot(net, opt)
    before_model, before_opt = state(net, opt)
    snap.restore(net, opt)
    p = Precision()
    train(net, Batches(), opt, nn.CrossEntropyLoss(), p, p.make_scaler(), progress=False)
    snap.restore(net, opt)
    after_model, after_opt = state(net, opt)
    assert all(torch.equal(before_model[k], after_model[k]) for k in before_model)
    assert all(torch.equal(before_opt[k][n], after_opt[k][n]) for k in before_opt for n in before_opt[k])


def test_snapshot_of_a_fresh_optimizer_restores_to_no_momentum():
    """A topology candidate fine-tunes from a fresh optimizer: each must start without momentum,
    at the snapshot's learning rate, with the very same parameter objects."""
    net, _, data = setup()
    opt = torch.optim.SGD(net.parameters(), 0.02, momentum=0.9)
    params = list(net.parameters())
    snap = Snapshot(net, opt)
    p = Precision()
    train(net, Batches(), opt, nn.CrossEntropyLoss(), p, p.make_scaler(), progress=False)
    opt.param_groups[0]["lr"] = 0.5
    assert len(opt.state) > 0
    snap.restore(net, opt)
    assert len(opt.state) == 0 and opt.param_groups[0]["lr"] == 0.02
    assert all(a is b for a, b in zip(params, net.parameters()))
    # and it trains on from there like a fresh optimizer would
    train(net, Batches(), opt, nn.CrossEntropyLoss(), p, p.make_scaler(), progress=False)
    assert all("momentum_buffer" in opt.state[q] for q in params if q.grad is not None)


def test_accumulate_restore_carries_weights_and_restores_the_optimizer_before_each_candidate():
    """The original's restore on torch 1.12 reloaded references to the live tensors but a deep
    copy of the optimizer state: candidate 2 starts from the weights (and BN statistics) where
    candidate 1's fine-tuning ended, with the optimizer state of the snapshot."""
    cands = [(0, "skip_connect"), (9, "max_pool_3x3"), (13, "sep_conv_3x3")]
    for restore in ("exact", "accumulate"):
        net, _, data = setup()
        opt = torch.optim.SGD(net.parameters(), 0.02, momentum=0.9)  # fresh, as before a topology decision
        trained = state(net, opt)
        starts = []  # (momentum buffers, weights and buffers) at each candidate's start

        def record(model, opt=opt, starts=starts):
            starts.append((len(opt.state), state(model, opt)[0]))
            return model

        perturb_val(net, opt, cands, data, finetune_steps=2, data_epoch=0, seed=3, restore=restore, prepare=record)
        assert [n for n, _ in starts] == [0, 0, 0], restore  # no momentum carried into any candidate
        moved = [any(not torch.equal(trained[0][k], w[k]) for k in w) for _, w in starts]
        assert moved == [False, restore == "accumulate", restore == "accumulate"], restore
        if restore == "accumulate":  # the BN running statistics carry over too
            assert any(not torch.equal(trained[0][k], starts[1][1][k]) for k in trained[0] if "running_mean" in k)
        end = state(net, opt)
        assert len(opt.state) == 0  # the optimizer is restored after the last candidate as well
        assert all(torch.equal(trained[0][k], end[0][k]) for k in trained[0]) is (restore == "exact")


def test_accumulate_scores_the_first_candidate_as_exact_does():
    cands = [(0, "skip_connect"), (9, "max_pool_3x3")]
    net, opt, data = setup()
    res = perturb_val(net, opt, cands, data, finetune_steps=2, data_epoch=0, seed=3, restore="accumulate")
    net, opt, data = setup()
    exact = perturb_val(net, opt, cands, data, finetune_steps=2, data_epoch=0, seed=3)
    assert exact.scores[cands[0]] == res.scores[cands[0]]


def test_zero_off_ops_compute_the_switched_off_operation_and_still_move_it():
    """The original multiplied a removed operation by 0: no gradient, yet weight decay and
    momentum move its weights and its BN running statistics update; `skip` leaves it untouched."""
    cand = (5, "sep_conv_3x3")
    results = {}
    for off_ops in ("skip", "zero"):
        net, opt, data = setup(off_ops)
        op = net.cells[0].edges[5].ops["sep_conv_3x3"]
        before = {k: v.clone() for k, v in op.state_dict().items()}
        res = perturb_val(net, opt, [cand], data, finetune_steps=2, data_epoch=0, seed=3, restore="accumulate")
        changed = {k for k, v in op.state_dict().items() if not torch.equal(before[k], v)}
        results[off_ops] = res.scores[cand]
        if off_ops == "skip":
            assert not changed
        else:
            assert any(k.endswith("weight") for k in changed) and any("running_mean" in k for k in changed)
    # multiplied by zero, it changes no output: the scores agree
    assert abs(results["skip"] - results["zero"]) < 1e-6


def test_fresh_batches_give_each_candidate_the_start_of_a_new_seeded_shuffle():
    """The original re-entered its loader for every candidate: a new epoch, a new shuffle, and
    the candidate fine-tunes on its first F + 1 batches. `fresh` does that, seeded."""

    class Shuffled(Batches):
        """Yields its batches in an order fixed by the epoch, like the project's loaders."""

        def __iter__(self):
            order = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(self.epoch))
            for i in order.tolist():
                seen.append((self.epoch, i))
                yield self.data[i]

    cands = [(0, "skip_connect"), (9, "max_pool_3x3"), (13, "sep_conv_3x3")]
    runs = {}
    for batches in ("shared", "fresh", "fresh"):
        net, opt, data = setup()
        data.train = Shuffled(n=6, seed=4)
        seen = []
        perturb_val(net, opt, cands, data, finetune_steps=2, data_epoch=5, seed=3, batches=batches)
        per_candidate = [seen[i : i + 2] for i in range(0, len(seen), 2)]
        epochs = [c[0][0] for c in per_candidate]
        if batches == "shared":
            assert epochs == [5, 5, 5] and per_candidate[0] == per_candidate[1] == per_candidate[2]
        else:
            assert len(set(epochs)) == 3  # a new epoch per candidate ...
            for c in per_candidate:  # ... read from its first batch on
                first = torch.randperm(6, generator=torch.Generator().manual_seed(c[0][0]))[:2].tolist()
                assert [i for _, i in c] == first
        runs.setdefault(batches, []).append(per_candidate)
    assert runs["fresh"][0] == runs["fresh"][1]  # seeded: a rerun reads the same batches


def test_perturb_val_logs_the_finetuning_lr_and_takes_the_steps_it_is_given(caplog):
    net, opt, data = setup()
    steps = []
    with caplog.at_level("INFO", logger="nas"):
        perturb_val(
            net, opt, [(3, "sep_conv_3x3")], data, finetune_steps=4, data_epoch=0, seed=1, on_steps=steps.append
        )
    assert steps == [4]
    assert "fine-tune 4 steps at lr 0.05," in caplog.text
