import dataclasses

import pytest
import yaml

from deepspeech2.core.config import Config, ConfigError, load_config, save_config, apply_overrides
from deepspeech2.data.shapes import output_frame_seconds


def test_defaults_are_the_zoo_architecture():
    cfg = Config()
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.model.rnn_type) == (1024, 5, "lstm")
    assert cfg.features.window == "hamming"


def test_yaml_and_dotted_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.001\ndata:\n  batch_size: 4\n")
    cfg = load_config(path, ["optim.lr=1e-4", "model.rnn_type=gru", "data.sortagrad=false"])
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.data.batch_size == 4
    assert cfg.model.rnn_type == "gru"
    assert cfg.data.sortagrad is False


def test_unknown_yaml_key_lists_valid_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key.*learning_rate.*valid keys.*'lr'"):
        load_config(path)


def test_unknown_section_and_override_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(None, ["optimizer.lr=1"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["optim.lr"])


def test_type_errors_are_reported():
    with pytest.raises(ConfigError, match="data.batch_size: expected an integer"):
        apply_overrides(Config(), ["data.batch_size=eight"])
    with pytest.raises(ConfigError, match="expected true/false"):
        apply_overrides(Config(), ["data.shuffle=3"])


def test_keys_with_fixed_values_are_checked_when_loading(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  mode: eager\n")
    with pytest.raises(ConfigError, match=rf"{path}.train.mode: 'eager' is not one of \['graph', 'pynative'\]"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"train.jit_level: 'O3' is not one of \['O0', 'O1'\]"):
        load_config(None, ["train.jit_level=O3"])
    cfg = load_config(None, ["train.device_target=Ascend", "eval.decoder=beam", "model.rnn_type=gru"])
    assert (cfg.train.device_target, cfg.eval.decoder, cfg.model.rnn_type) == ("Ascend", "beam", "gru")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["optim.lr=0.5", "train.output_dir=/x"])
    out = save_config(cfg, tmp_path / "sub" / "config.yaml")
    assert load_config(out) == cfg
    assert yaml.safe_load(out.read_text())["optim"]["lr"] == 0.5


@pytest.mark.parametrize("name", ["lab_base.yaml", "lab_small.yaml", "lab_long.yaml", "zoo.yaml", "gpu.yaml", "ascend.yaml"])
def test_shipped_configs_load(name, repo_root):
    path = repo_root / "configs" / name
    if not path.exists():
        pytest.skip(f"{name} not shipped")
    load_config(path)


def test_base_chain_is_relative_recursive_and_merged_per_key(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "root.yaml").write_text("optim: {lr: 0.1, anneal: 2.0}\nmodel: {hidden_size: 64}\n")
    (tmp_path / "presets" / "mid.yaml").write_text("base: ../root.yaml\noptim: {lr: 0.2}\n")
    (tmp_path / "presets" / "top.yaml").write_text("base: mid.yaml\nmodel: {num_layers: 2}\n")
    cfg = load_config(tmp_path / "presets" / "top.yaml", ["optim.anneal=3.0"])
    assert (cfg.optim.lr, cfg.optim.anneal, cfg.model.hidden_size, cfg.model.num_layers) == (0.2, 3.0, 64, 2)


def test_base_cycle_and_missing_base_are_clear_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere.yaml does not exist \(base of"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: [x]\n")
    with pytest.raises(ConfigError, match="'base' must be the path"):
        load_config(tmp_path / "d.yaml")


def test_lab_presets_differ_from_their_base_only_in_recipe_length(repo_root):
    base = load_config(repo_root / "configs" / "lab_base.yaml")
    small = load_config(repo_root / "configs" / "lab_small.yaml")
    long = load_config(repo_root / "configs" / "lab_long.yaml")
    for section in ("data", "features", "model", "eval", "export"):         # one network, one recipe
        assert getattr(small, section) == getattr(long, section) == getattr(base, section), section
    stride_4 = dataclasses.replace(base.model, conv_stack="small_t4")
    assert output_frame_seconds(base.model, base.features) < output_frame_seconds(stride_4, base.features)  # row 24
    assert base.data.max_duration == 16.0 and base.data.augment.speed_perturb > 0
    assert not base.data.augment.freq_masks                                 # SpecAugment trailed (row 20)
    assert small.train.epochs < long.train.epochs                           # the longer recipe is longer
    assert small.optim.lr == long.optim.lr and small.optim.anneal > long.optim.anneal   # slower decay
    assert not small.data.train_manifest and not small.train.output_dir   # given on the command line
