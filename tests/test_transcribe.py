"""Transcription: any rate/channels, long files in chunks, bad files reported without stopping."""
from __future__ import annotations

import json
import subprocess
import sys

import librosa
import numpy as np
import soundfile

from deepspeech2.data.manifest import read_manifest


def test_resamples_stereo_and_reports_bad_files(tiny_config, tiny_checkpoint, tmp_path):
    wav = read_manifest(tiny_config.data.test_manifest)[0].wav_path
    audio, rate = soundfile.read(wav)
    hi = librosa.resample(audio, orig_sr=rate, target_sr=44100)
    stereo = tmp_path / "stereo44k.flac"
    soundfile.write(stereo, np.stack([hi, hi], axis=1), 44100)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    cmd = [sys.executable, "-m", "deepspeech2.cli.transcribe", "--model", str(tiny_checkpoint), "--json",
           "--chunk_seconds", "4", str(stereo), str(corrupt), str(tmp_path), str(wav)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]                # some files failed
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in rows] == [str(stereo), str(corrupt), str(tmp_path), str(wav)]
    assert rows[0]["error"] == "" and abs(rows[0]["duration"] - len(audio) / rate) < 0.01
    assert "corrupt.wav" in rows[1]["error"] and "directory" in rows[2]["error"]
    assert rows[3]["error"] == ""
    assert "2 of 4 files failed" in proc.stderr


def test_word_times_from_emission_frames():
    from deepspeech2.inference.transcribe import word_times

    words = word_times("HI YOU", [2, 3, 5, 8, 9, 11], seconds_per_frame=0.02, offset=1.0)
    assert words == [{"word": "HI", "start": 1.04, "end": 1.08},
                     {"word": "YOU", "start": 1.16, "end": 1.24}]
    assert word_times("", [], 0.02, 0.0) == []


def test_transcribe_audio_rejects_a_chunk_that_would_never_advance():
    import numpy as np
    import pytest

    from deepspeech2.inference.transcribe import transcribe_audio

    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="chunk_seconds"):
            transcribe_audio(np.zeros(1600, np.float32), model=None, decode=None, chunk_seconds=bad, timestamps=False)
