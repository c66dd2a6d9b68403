import librosa
import numpy as np
import pytest

from deepspeech2.core.config import FeatureConfig
from deepspeech2.data.features import num_frames, num_freq_bins, spectrogram


@pytest.mark.parametrize("window", ["hamming", "hann"])
def test_matches_librosa(window):
    cfg = FeatureConfig(window=window, normalize=False)
    audio = np.random.default_rng(0).standard_normal(16000 * 2 + 77).astype(np.float32) * 0.1
    ref = np.log1p(np.abs(librosa.stft(audio, n_fft=320, hop_length=160, win_length=320, window=window,
                                       center=True, pad_mode="constant")))
    out = spectrogram(audio, cfg)
    assert out.shape == ref.shape == (num_freq_bins(cfg), num_frames(audio.size, cfg))
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_zoo_dimensions_and_length_formula():
    cfg = FeatureConfig()
    assert num_freq_bins(cfg) == 161
    for n in (1, 159, 160, 161, 16000, 16159):
        assert spectrogram(np.ones(n, np.float32) * 0.01, cfg).shape[1] == 1 + n // 160 == num_frames(n, cfg)


def test_normalisation_is_per_utterance():
    audio = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    feats = spectrogram(audio, FeatureConfig())
    assert abs(feats.mean()) < 1e-5 and abs(feats.std() - 1) < 1e-4
    raw = spectrogram(audio, FeatureConfig(normalize=False))            # the same utterance, unnormalised
    assert abs(raw.mean()) > 0.1                                         # so normalising had work to do
    np.testing.assert_allclose(feats, (raw - raw.mean()) / raw.std(), atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="mono"):
        spectrogram(np.zeros((2, 100), np.float32), FeatureConfig())
    with pytest.raises(ValueError, match="empty"):
        spectrogram(np.zeros(0, np.float32), FeatureConfig())
    with pytest.raises(ValueError, match="unknown window"):
        spectrogram(np.ones(400, np.float32), FeatureConfig(window="hanning"))


def test_fbank_matches_librosa_melspectrogram(speech_clips):
    import librosa

    from deepspeech2.data.audio import load_audio
    from deepspeech2.data.features import FBANK_FLOOR, compute_features, num_freq_bins

    path, _ = next(iter(speech_clips.values()))
    audio = load_audio(path, 16000)
    cfg = FeatureConfig(type="fbank", window_size=0.025, window="hann", n_mels=80, normalize=False)
    ref = np.log(librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=400, hop_length=160, window="hann",
                                                center=True, pad_mode="constant", power=2.0, n_mels=80) + FBANK_FLOOR)
    out = compute_features(audio, cfg)
    assert out.shape == ref.shape == (num_freq_bins(cfg), num_frames(audio.size, cfg))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-3)
    normed = compute_features(audio, FeatureConfig(type="fbank", window_size=0.025, window="hann"))
    np.testing.assert_allclose(normed.mean(1), 0, atol=1e-4)        # per-band CMVN
    np.testing.assert_allclose(normed.std(1), 1, atol=1e-3)
