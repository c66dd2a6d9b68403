"""The recipe-study table (deepspeech2.lab.recipe) from ds2-train output files."""
import json

import yaml

from deepspeech2.core.config import config_to_dict, load_config
from deepspeech2.lab.recipe import main, run_record, study_table


def _fake_run(path, overrides, epochs, rate):
    """A run directory as ds2-train writes it: config.yaml, train.log, metrics.jsonl."""
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(config_to_dict(load_config(None, overrides))))
    log = ["2026-01-01 10:00:00,000 INFO [loop.py:1] essential configuration: {}"]
    metrics = []
    for epoch, (minute, cer) in enumerate(epochs, start=1):
        metrics.append({"type": "step", "step": 10 * epoch, "audio_s_per_s": rate})
        metrics.append({"type": "epoch", "step": 10 * epoch, "epoch": epoch, "cer": cer, "wer": 2 * cer, "loss": 1.0})
        log.append(f"2026-01-01 10:{minute:02d}:00,000 INFO [loop.py:2] epoch {epoch} dev: {{'cer': {cer}}}")
    (path / "train.log").write_text("\n".join(log) + "\n")
    (path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return path


def test_budget_picks_the_last_epoch_within_it(tmp_path):
    ref = run_record("ref", _fake_run(tmp_path / "a", [], [(4, 0.8), (8, 0.6), (12, 0.5)], 10.0))
    fast = run_record("fast", _fake_run(tmp_path / "b", ["model.conv_stack=small_t4", "optim.lr=1e-3"],
                                        [(3, 0.5), (6, 0.3), (9, 0.2), (12, 0.15)], 30.0))
    assert [e["minutes"] for e in fast["epochs"]] == [3.0, 6.0, 9.0, 12.0]
    rows, table = study_table([ref, fast], budget_min=10)
    assert rows[0]["changes"] == {} and rows[0]["budget"]["cer"] == 0.6 and rows[0]["budget"]["step"] == 20
    assert rows[1]["changes"] == {"model.conv_stack": "small_t4", "optim.lr": 0.001}
    assert rows[1]["budget"]["cer"] == 0.2 and rows[1]["last"]["cer"] == 0.15
    assert "| fast | `model.conv_stack=small_t4`, `optim.lr=0.001` | 30.0 | 30 | 20.0 / 40.0 |" in table
    assert table.splitlines()[-1].endswith("| 50.0, 30.0, 20.0, 15.0 |")           # the curve by epoch


def test_cli_writes_json_and_markdown(tmp_path):
    run = _fake_run(tmp_path / "a", [], [(20, 0.9)], 5.0)
    out = tmp_path / "study" / "recipe.json"
    assert main(["--run", f"only={run}", "--budget-min", "10", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["rows"][0]["budget"] is None                 # its only epoch ended after the budget
    assert "| only | — | 5.0 | – | – |" in out.with_suffix(".md").read_text()


def test_cli_label_may_name_a_config_key(tmp_path):
    run = _fake_run(tmp_path / "a", [], [(5, 0.5)], 5.0)
    out = tmp_path / "recipe.json"
    assert main(["--run", f"no augmentation in epoch 1 (data.augment.start_epoch=1)={run}",
                 "--budget-min", "10", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["runs"][0]["label"] == "no augmentation in epoch 1 (data.augment.start_epoch=1)"


def test_cli_names_a_directory_that_is_not_a_run(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["--run", f"x={tmp_path}", "--budget-min", "10", "--out", str(tmp_path / "r.json")])
    assert exit_info.value.code == 2
    assert "not a ds2-train run directory (missing config.yaml, train.log, metrics.jsonl)" in capsys.readouterr().err


def test_append_adds_runs_to_an_existing_study_and_refuses_duplicates(tmp_path, capsys):
    import pytest

    first = _fake_run(tmp_path / "a", [], [(4, 0.8)], 5.0)
    second = _fake_run(tmp_path / "b", ["optim.lr=1e-3"], [(4, 0.6)], 5.0)
    out = tmp_path / "recipe.json"
    assert main(["--run", f"ref={first}", "--budget-min", "10", "--out", str(out), "--note", "day 1"]) == 0
    assert main(["--run", f"lr={second}", "--budget-min", "10", "--out", str(out), "--append", "--note", "day 2"]) == 0
    data = json.loads(out.read_text())
    assert [r["label"] for r in data["runs"]] == ["ref", "lr"] and data["note"] == "day 1 day 2"
    assert data["rows"][1]["changes"] == {"optim.lr": 0.001}             # still relative to the first run
    with pytest.raises(SystemExit):
        main(["--run", f"lr={second}", "--budget-min", "10", "--out", str(out), "--append"])
    assert "already has a run labelled 'lr'" in capsys.readouterr().err
