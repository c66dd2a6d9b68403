"""load_utterances: data.min_duration / data.max_duration filter training data only (committed clips)."""
from __future__ import annotations


import soundfile

from deepspeech2.core.config import load_config
from deepspeech2.data.dataset import load_utterances
from deepspeech2.data.manifest import Sample, write_json_manifest
from deepspeech2.data.vocab import Vocab


def _manifest(tmp_path, speech_clips) -> tuple:
    samples, durations = [], {}
    for name, (clip, text) in speech_clips.items():
        wav, txt = tmp_path / "wav" / f"{name}.wav", tmp_path / "txt" / f"{name}.txt"
        wav.parent.mkdir(exist_ok=True)
        txt.parent.mkdir(exist_ok=True)
        audio, rate = soundfile.read(clip, dtype="int16")
        soundfile.write(wav, audio, rate, subtype="PCM_16")
        txt.write_text(text)
        samples.append(Sample(wav, txt))
        durations[name] = len(audio) / rate
    return write_json_manifest(tmp_path / "m.json", tmp_path, samples), durations


def test_duration_limits_drop_training_utterances_only(tmp_path, speech_clips):
    manifest, durations = _manifest(tmp_path, speech_clips)
    assert durations["no"] < 0.5 < durations["stew"] < durations["canoe"] < 1.2 < durations["greek"]
    cfg = load_config(None, ["data.min_duration=0.5", "data.max_duration=1.2"])
    kept, dropped = load_utterances(manifest, Vocab(), cfg, training=True)
    assert sorted(u.utt_id for u in kept) == ["canoe", "stew"]
    assert dropped == {"duration outside limits": 2}
    assert {u.utt_id: u.duration for u in kept} == {n: durations[n] for n in ("canoe", "stew")}
    everything, none = load_utterances(manifest, Vocab(), cfg, training=False)   # evaluation keeps all
    assert len(everything) == 4 and not none


def test_zero_limits_are_off(tmp_path, speech_clips):
    manifest, _ = _manifest(tmp_path, speech_clips)
    cfg = load_config(None, ["data.min_duration=0", "data.max_duration=0"])
    kept, dropped = load_utterances(manifest, Vocab(), cfg, training=True)
    assert len(kept) == 4 and not dropped
    only_long = load_config(None, ["data.min_duration=1.2", "data.max_duration=0"])
    assert [u.utt_id for u in load_utterances(manifest, Vocab(), only_long, training=True)[0]] == ["greek"]
