import pytest

from deepspeech2.core.config import OptimConfig
from deepspeech2.training.schedule import lr_at


def test_warmup_then_per_epoch_anneal():
    cfg = OptimConfig(lr=1e-3, warmup_steps=4, anneal=2.0, min_lr=1e-5)
    rates = [lr_at(s, 10, cfg) for s in range(30)]
    assert rates[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert rates[4:10] == pytest.approx([1e-3] * 6)
    assert rates[10:20] == pytest.approx([5e-4] * 10)
    assert rates[20] == pytest.approx(2.5e-4)


def test_floor_and_errors():
    cfg = OptimConfig(lr=1e-3, anneal=10.0, min_lr=1e-5)
    assert lr_at(100, 10, cfg) == pytest.approx(1e-5)
    with pytest.raises(ValueError):
        lr_at(0, 0, cfg)
    with pytest.raises(ValueError):
        lr_at(-1, 10, cfg)
