"""Config ranges are checked at load with the key named; YAML syntax errors name the file; fixed-value
keys are case-insensitive (``--file_format mindir``)."""
from __future__ import annotations

import pytest

from deepspeech2.core.config import Config, ConfigError, config_to_dict, load_config
from deepspeech2.core.config_rules import ORDER_RULES, RANGE_RULES, Range


@pytest.mark.parametrize("override, message", [
    ("optim.lr=-4e-3", "optim.lr: must be > 0, got -0.004"),
    ("data.batch_size=0", "data.batch_size: must be >= 1, got 0"),
    ("data.eval_batch_size=0", "data.eval_batch_size: must be >= 1, got 0"),
    ("train.save_interval_steps=0", "train.save_interval_steps: must be >= 1, got 0"),
    ("train.keep_last=0", "train.keep_last: must be >= 1, got 0"),
    ("train.log_interval=0", "train.log_interval: must be >= 1, got 0"),
    ("train.epochs=0", "train.epochs: must be >= 1, got 0"),
    ("train.max_steps=-1", "train.max_steps: must be >= 0, got -1"),
    ("data.min_duration=-1", "data.min_duration: must be >= 0, got -1.0"),
    ("eval.beam_width=0", "eval.beam_width: must be >= 1, got 0"),
    ("optim.anneal=0", "optim.anneal: must be > 0, got 0.0"),
    ("optim.max_grad_norm=-1", "optim.max_grad_norm: must be >= 0, got -1.0"),
    ("train.loss_scale_value=0", "train.loss_scale_value: must be > 0, got 0.0"),
    ("data.augment.speed_perturb=0.5", "data.augment.speed_perturb: must be in [0, 0.5), got 0.5"),
    ("data.augment.noise_prob=1.5", "data.augment.noise_prob: must be in [0, 1], got 1.5"),
    ("data.augment.time_mask_max_ratio=-0.1", "data.augment.time_mask_max_ratio: must be in [0, 1], got -0.1"),
    ("data.augment.noise_snr_min=40", "data.augment.noise_snr_min: must be <= data.augment.noise_snr_max (30.0), got 40.0"),
    ("features.n_mels=0", "features.n_mels: must be >= 1, got 0"),
    ("optim.lr=nan", "optim.lr: must be > 0, got nan"),
])
def test_out_of_range_values_are_rejected_with_the_key_named(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == message


def test_every_violation_is_reported_and_a_file_value_can_be_fixed_by_an_override(tmp_path):
    with pytest.raises(ConfigError, match=r"^data.batch_size: .*; optim.lr: "):
        load_config(None, ["optim.lr=0", "data.batch_size=0"])
    path = tmp_path / "c.yaml"
    path.write_text("optim: {lr: -1}\n")
    assert load_config(path, ["optim.lr=1e-3"]).optim.lr == 1e-3
    with pytest.raises(ConfigError, match="optim.lr: must be > 0"):
        load_config(path)


def test_every_rule_names_an_existing_key_and_defaults_pass():
    tree = config_to_dict(Config())
    for key in [*RANGE_RULES, *(k for pair in ORDER_RULES for k in pair)]:
        node = tree
        for part in key.split("."):
            node = node[part]                     # KeyError = a rule for a key that does not exist
        assert not isinstance(node, dict), key
    load_config(None, [])


def test_range_bounds():
    assert Range(0, low_open=True).contains(1e-9) and not Range(0, low_open=True).contains(0)
    assert Range(0, 0.5, high_open=True).contains(0) and not Range(0, 0.5, high_open=True).contains(0.5)
    assert Range(high=3).describe() == "<= 3"


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("optim:\n  lr: 0.1\n data: [\n")
    with pytest.raises(ConfigError, match=rf"^{path}: not valid YAML at line 3, column 2 .*fix the file's syntax$"):
        load_config(path)


def test_yaml_syntax_error_is_one_line_and_exit_2_from_a_command(tmp_path, capsys):
    from deepspeech2.cli.train import main

    path = tmp_path / "broken.yaml"
    path.write_text("train: {epochs: 3\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{path}: not valid YAML" in err and "Traceback" not in err


def test_fixed_value_keys_are_case_insensitive_and_stored_canonically():
    cfg = load_config(None, ["export.file_format=mindir", "train.device_target=cpu", "train.amp_level=o2"])
    assert (cfg.export.file_format, cfg.train.device_target, cfg.train.amp_level) == ("MINDIR", "CPU", "O2")
    with pytest.raises(ConfigError, match="is not one of"):
        load_config(None, ["export.file_format=mindirx"])


def test_lower_case_file_format_flag_of_the_export_command():
    from deepspeech2.cli.args import parse_run_args
    from deepspeech2.cli.export import EXPORT_FLAGS

    cfg, _ = parse_run_args(["--file_format", "mindir"], "ds2-export", "test", EXPORT_FLAGS)
    assert cfg.export.file_format == "MINDIR"
