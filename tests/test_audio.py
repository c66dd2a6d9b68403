import numpy as np
import pytest
import soundfile

from deepspeech2.data.audio import AudioError, audio_duration, load_audio


def test_int16_scaling_like_the_zoo(tmp_path):
    samples = np.array([0, 1000, -32768, 32767, 5], dtype=np.int16)
    path = tmp_path / "a.wav"
    soundfile.write(path, samples, 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(path, 16000), samples / 32767.0, atol=1e-7)


def test_resample_and_downmix(tmp_path):
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.flac"
    soundfile.write(path, np.stack([tone, tone], axis=1), 44100)
    audio = load_audio(path, 16000)
    assert audio.ndim == 1 and abs(audio.size - 16000) <= 1
    assert audio_duration(path) == pytest.approx(1.0)
    assert np.abs(audio).max() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("content", [b"", b"not audio at all" * 10])
def test_bad_files_name_the_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="bad.wav"):
        load_audio(path, 16000)
    with pytest.raises(AudioError, match="bad.wav"):
        audio_duration(path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "nope.wav", 16000)
    with pytest.raises(AudioError, match="directory"):
        load_audio(tmp_path, 16000)
