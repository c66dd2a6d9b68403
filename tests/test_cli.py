"""The lab's command-line flags and dotted overrides map onto the one config tree."""
from __future__ import annotations

import pytest

from deepspeech2.cli.args import parse_run_args


def _parse(*argv):
    cfg, _ = parse_run_args(list(argv), prog="ds2-train", description="test")
    return cfg


def test_bare_distributed_switch_does_not_swallow_the_next_override():
    cfg = _parse("--is_distributed", "data.batch_size=4")          # what the msrun launchers pass
    assert cfg.train.is_distributed is True and cfg.data.batch_size == 4
    assert _parse("--no-is_distributed").train.is_distributed is False
    assert _parse().train.is_distributed is False


def test_lab_flags_set_their_keys_and_dotted_overrides_win():
    cfg = _parse("--device_target", "GPU", "--output_dir", "/tmp/x", "train.device_target=Ascend")
    assert cfg.train.device_target == "Ascend" and cfg.train.output_dir == "/tmp/x"


def test_bad_flag_values_name_the_key(capsys):
    with pytest.raises(SystemExit):
        _parse("--device_target", "TPU")
    assert "train.device_target: 'TPU' is not one of ['CPU', 'GPU', 'Ascend']" in capsys.readouterr().err
