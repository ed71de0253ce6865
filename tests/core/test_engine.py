import logging
import sys

import pytest
import torch
import torch.nn as nn

from nas.core.engine import Meter, Precision, accuracy_counts, cycle, evaluate, train
from nas.core.errors import UserError


class Loader:
    def __init__(self, batches):
        self.batches = batches
        self.epochs = []

    def set_epoch(self, e):
        self.epochs.append(e)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def data(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 5, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(n)]


def test_accuracy_counts():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    c1, c5 = accuracy_counts(logits, torch.tensor([1, 2]))
    assert (c1.item(), c5.item()) == (1, 2)


def test_meter_averages_over_samples():
    m = Meter(torch.device("cpu"))
    m.update(torch.tensor(1.0), torch.eye(3)[:2], torch.tensor([0, 1]))
    m.update(torch.tensor(4.0), torch.eye(3)[:1], torch.tensor([2]))
    r = m.result()
    assert r["loss"] == pytest.approx(2.0)
    assert r["top1"] == pytest.approx(200 / 3)
    assert r["samples"] == 3


def test_train_counts_steps_and_reduces_loss():
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    opt = torch.optim.SGD(model.parameters(), 0.5)
    p = Precision()
    batches = data()
    first = evaluate(model, batches, nn.CrossEntropyLoss(), p)["loss"]
    for _ in range(20):
        res = train(model, batches, opt, nn.CrossEntropyLoss(), p, p.make_scaler(), progress=False)
    assert res["steps"] == 3
    assert evaluate(model, batches, nn.CrossEntropyLoss(), p)["loss"] < first


def test_train_with_steps_cycles_over_epochs():
    loader = Loader(data(2))
    model = nn.Linear(5, 3)
    p = Precision()
    res = train(
        model,
        cycle(loader, start_epoch=10),
        torch.optim.SGD(model.parameters(), 0.1),
        nn.CrossEntropyLoss(),
        p,
        p.make_scaler(),
        steps=5,
        progress=False,
    )
    assert res["steps"] == 5
    assert loader.epochs == [10, 11, 12]


def test_nan_loss_stops_with_step_and_lr():
    model = nn.Linear(5, 3)
    p = Precision()
    batches = [(torch.full((4, 5), float("nan")), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(UserError, match=r"^stage x ep1/1: training loss became nan at step 1 \(lr 0.1\)"):
        train(
            model,
            batches,
            torch.optim.SGD(model.parameters(), 0.1),
            nn.CrossEntropyLoss(),
            p,
            p.make_scaler(),
            progress=False,
            desc="stage x ep1/1",
        )


def test_bf16_autocast_on_cpu_trains():
    model = nn.Linear(5, 3)
    p = Precision.choose(torch.device("cpu"), "bf16")
    res = train(
        model,
        data(),
        torch.optim.SGD(model.parameters(), 0.1),
        nn.CrossEntropyLoss(),
        p,
        p.make_scaler(),
        progress=False,
    )
    assert res["steps"] == 3


def test_precision_choices():
    assert Precision.choose(torch.device("cpu"), "auto").dtype is None
    with pytest.raises(UserError, match="fp16 needs CUDA"):
        Precision.choose(torch.device("cpu"), "fp16")
    with pytest.raises(UserError, match="--amp 'half'"):
        Precision.choose(torch.device("cpu"), "half")


def test_evaluation_model_output_tuple_is_handled():
    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 3)

        def forward(self, x):
            return self.fc(x), self.fc(x) * 2

    model = WithAux()
    p = Precision()
    res = train(
        model,
        data(),
        torch.optim.SGD(model.parameters(), 0.1),
        nn.CrossEntropyLoss(),
        p,
        p.make_scaler(),
        aux_weight=0.4,
        progress=False,
    )
    assert res["steps"] == 3


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.parametrize(
    "tty,progress,expected",
    [
        (False, True, ["ep1 step 2/5", "ep1 step 4/5"]),  # a file: lines with the ETA, none at the last step
        (False, False, []),  # --no-progress: none
        (True, True, []),  # a terminal: the bar instead
    ],
)
def test_progress_is_a_bar_on_a_terminal_and_eta_lines_in_a_file(monkeypatch, capsys, tty, progress, expected):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    handler = Lines()
    logger = logging.getLogger("nas")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        model = nn.Linear(5, 3)
        p = Precision()
        train(
            model,
            data(5),
            torch.optim.SGD(model.parameters(), 0.1),
            nn.CrossEntropyLoss(),
            p,
            p.make_scaler(),
            log_every=2,
            desc="ep1",
            progress=progress,
        )
    finally:
        logger.removeHandler(handler)
    assert [line.split(" loss ")[0] for line in handler.lines] == expected
    assert all(" eta " in line for line in handler.lines)
    err = capsys.readouterr().err
    assert ("ep1" in err) == (tty and progress)  # tqdm draws on stderr only on a terminal
