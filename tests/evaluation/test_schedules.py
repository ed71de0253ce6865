import math

import pytest
import torch

from nas.core.errors import UserError
from nas.evaluation.schedules import LRFactor, build_scheduler, drop_path_prob


def lrs(kind, epochs, batch_size, base=0.1):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    sched = build_scheduler(opt, kind, epochs, batch_size)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_linear_schedule_follows_the_spec_formula():
    E = 300
    lr = lrs("linear", E, 128)
    for epoch in (0, 1, 100, 294):  # the first E-5 epochs: 0.1 (E-5-epoch) / (E-5)
        assert lr[epoch] == pytest.approx(0.1 * (E - 5 - epoch) / (E - 5))
    for epoch in (295, 297, 299):  # the last five: 0.1 (E-epoch) / ((E-5) 5)
        assert lr[epoch] == pytest.approx(0.1 * (E - epoch) / ((E - 5) * 5))
    assert lr[0] == pytest.approx(0.1)  # no warm-up at batch 128


def test_linear_schedule_warms_up_above_batch_256_by_scaling_its_lr():
    E = 300
    lr = lrs("linear", E, 512)
    # the original multiplies the schedule's lr by (e + 1) / 5 in the first five epochs
    assert lr[:5] == pytest.approx([0.1 * (E - 5 - e) / (E - 5) * (e + 1) / 5 for e in range(5)])
    assert lr[5] == pytest.approx(0.1 * (E - 10) / (E - 5))
    assert lrs("linear", E, 256)[0] == pytest.approx(0.1)  # 256 itself does not warm up


def test_cosine_schedule_steps_at_the_start_of_each_epoch():
    E = 600
    lr = lrs("cosine", E, 128, base=0.025)
    # epoch e trains at the cosine value for e + 1, the last epoch at 0
    assert lr[0] == pytest.approx(0.025 * (1 + math.cos(math.pi / E)) / 2, rel=1e-12)
    assert lr[0] == pytest.approx(2.4999828653e-02, rel=1e-10)
    assert lr[1] == pytest.approx(0.025 * (1 + math.cos(2 * math.pi / E)) / 2, rel=1e-12)
    assert lr[299] == pytest.approx(0.0125)
    assert lr[E - 1] == pytest.approx(0.0, abs=1e-18)
    assert lrs("cosine", 20, 1024, base=0.025)[0] == pytest.approx(
        0.025 * (1 + math.cos(math.pi / 20)) / 2
    )  # no warm-up


def test_scheduler_state_restores_the_schedule():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = build_scheduler(opt, "linear", 20, 512)
    for _ in range(7):
        opt.step()
        sched.step()
    state_opt, state_sched = opt.state_dict(), sched.state_dict()
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched2 = build_scheduler(opt2, "linear", 20, 512)
    opt2.load_state_dict(state_opt)
    sched2.load_state_dict(state_sched)
    for _ in range(3):
        opt.step(), opt2.step()
        sched.step(), sched2.step()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_drop_path_ramps_linearly_with_the_epoch():
    assert [drop_path_prob(0.3, e, 600) for e in (0, 150, 300, 599)] == pytest.approx(
        [0.0, 0.075, 0.15, 0.3 * 599 / 600]
    )


def test_bad_schedule_arguments():
    with pytest.raises(UserError, match="'step'"):
        LRFactor("step", 10)
    with pytest.raises(UserError, match="--epochs 5"):
        LRFactor("linear", 5)
