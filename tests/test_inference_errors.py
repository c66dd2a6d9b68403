"""Bad input to the inference commands: a clear one-line error and a non-zero exit, never a traceback,
a hang or a silently partial score."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from deepspeech2.core.config import Config, load_config
from deepspeech2.data.manifest import read_manifest, write_csv_manifest
from deepspeech2.inference.acoustic import ModelFileError, load_acoustic_model


CPU = ["train.cpu_threads=2"]   # the device settings every test process uses (conftest's tiny_config)


def _sidecar(path, **changes) -> None:
    meta = {"labels": list("_abc"), "blank_symbol": "_", "features": dataclasses.asdict(Config().features),
            "model": dataclasses.asdict(Config().model), "output": "log_probs", **changes}
    path.write_text(json.dumps(meta))


def test_corrupt_mindir_is_one_line_naming_the_file(tmp_path, capsys):
    from deepspeech2.cli.transcribe import main

    model = tmp_path / "broken.mindir"
    model.write_bytes(b"\x08\x01 not a protobuf graph" * 10)
    _sidecar(model.with_suffix(".json"))
    with pytest.raises(ModelFileError, match=rf"^{model}: not a loadable MINDIR .*export it again with ds2-export$"):
        load_acoustic_model(model, load_config(None, CPU))
    assert main(["--model", str(model), "--set", CPU[0], str(tmp_path / "a.wav")]) == 1
    err = capsys.readouterr().err
    assert f"{model}: not a loadable MINDIR" in err and "Traceback" not in err


def test_unreadable_sidecar_names_the_sidecar(tmp_path):
    model = tmp_path / "m.mindir"
    model.write_bytes(b"x")
    model.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelFileError, match=rf"^{model.with_suffix('.json')}: not a ds2-export sidecar"):
        load_acoustic_model(model, load_config(None, CPU))


def test_mindir_with_another_exports_sidecar_fails_at_load(tiny_config, tiny_checkpoint, tmp_path):
    from deepspeech2.inference.export import export_model

    cfg = dataclasses.replace(tiny_config, export=dataclasses.replace(tiny_config.export, file_name=str(tmp_path / "m")))
    path = export_model(cfg, tiny_checkpoint)
    sidecar = path.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "features": {**meta["features"], "type": "fbank", "n_mels": 40}}))
    with pytest.raises(ModelFileError, match=rf"^{path} does not match its sidecar m.json .*export both again"):
        load_acoustic_model(path, cfg)
    sidecar.write_text(json.dumps({**meta, "labels": meta["labels"][1:]}))       # one label fewer
    with pytest.raises(ModelFileError, match=r"29 outputs for 28 labels"):
        load_acoustic_model(path, cfg)


@pytest.mark.parametrize("value", ["0", "-2", "nan"])
def test_chunk_seconds_must_be_positive(value, capsys):
    from deepspeech2.cli.transcribe import main

    with pytest.raises(SystemExit) as exit_:
        main(["--model", "m.ckpt", "--chunk_seconds", value, "a.wav"])
    assert exit_.value.code == 2 and "--chunk_seconds: must be > 0" in capsys.readouterr().err


def _manifest_with_a_missing_file(tiny_config, tmp_path):
    samples = read_manifest(tiny_config.data.test_manifest)
    missing = tmp_path / "gone.wav"
    shutil.copy(samples[0].transcript_path, tmp_path / "gone.txt")
    samples[0] = dataclasses.replace(samples[0], wav_path=missing, transcript_path=tmp_path / "gone.txt")
    return write_csv_manifest(tmp_path / "libri_test_clean_manifest.csv", samples), missing, len(samples)


def test_eval_fails_naming_unscorable_files_unless_allowed(tiny_config, tiny_checkpoint, tmp_path, capsys):
    from deepspeech2.cli.evaluate import main

    manifest, missing, total = _manifest_with_a_missing_file(tiny_config, tmp_path)
    args = ["--pretrain_ckpt", str(tiny_checkpoint), "--manifest", str(manifest), "--output_dir", str(tmp_path / "ev"),
            "data.eval_batch_size=3", CPU[0]]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"1 of {total} utterances cannot be scored" in err and str(missing) in err and "--allow_skipped" in err
    assert not (tmp_path / "ev").exists()                                  # failed before decoding
    assert main([*args, "--allow_skipped"]) == 0
    out = capsys.readouterr().out
    assert f"({total - 1} of {total} utterances, 1 skipped, greedy decoding)" in out
    summary = json.loads((tmp_path / "ev" / "summary-test_clean.json").read_text())
    assert summary["skipped"] == [str(missing)] and summary["utterances"] == total - 1


def test_overrides_may_follow_flags_anywhere():
    from deepspeech2.cli.args import parse_run_args

    cfg, _ = parse_run_args(["optim.lr=1e-3", "--device_target", "CPU", "data.batch_size=4", "--output_dir", "/x",
                             "train.epochs=2"], "ds2-train", "test")
    assert (cfg.optim.lr, cfg.data.batch_size, cfg.train.output_dir, cfg.train.epochs) == (1e-3, 4, "/x", 2)
