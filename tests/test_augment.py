"""Training-time augmentation (deepspeech2.data.augment) and its place in the data pipeline."""
import dataclasses

import numpy as np
import pytest

from deepspeech2.core.config import AugmentConfig, FeatureConfig, load_config
from deepspeech2.data import augment
from deepspeech2.data.audio import load_audio
from deepspeech2.data.noise import speech_rms
from deepspeech2.data.features import compute_features, num_frames

ON = AugmentConfig(speed_perturb=0.1, noise_prob=1.0, freq_masks=2, freq_mask_width=8,
                   time_masks=2, time_mask_width=30, time_mask_max_ratio=0.2)


def _clip(speech_clips):
    path, _ = next(iter(speech_clips.values()))
    return load_audio(path, 16000)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_scales_length_and_frames(speech_clips, factor):
    audio = _clip(speech_clips)
    fast = augment.speed_perturb(audio, factor)
    assert abs(fast.size - audio.size / factor) <= 1
    cfg = FeatureConfig(type="fbank", window_size=0.025)
    frames, new_frames = compute_features(audio, cfg).shape[1], compute_features(fast, cfg).shape[1]
    assert new_frames == num_frames(fast.size, cfg)
    assert abs(new_frames - frames / factor) <= 2


def test_speed_one_and_masks_off_change_nothing(speech_clips):
    audio = _clip(speech_clips)
    assert augment.speed_perturb(audio, 1.0) is audio
    choice = augment.draw(AugmentConfig(), seed=1, k=0, position=0)
    assert choice.speed == 1.0 and choice.noise_snr_db is None and not choice.freq_masks and not choice.time_masks
    assert not augment.enabled(AugmentConfig())


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_noise_has_the_requested_snr_and_colour(speech_clips, colour):
    audio = _clip(speech_clips)
    noisy = augment.add_noise(audio, 10.0, seed=3, colour=colour)
    noise = (noisy - audio).astype(np.float64)
    snr = 10 * np.log10(speech_rms(audio) ** 2 / np.mean(noise ** 2))
    assert abs(snr - 10.0) < 0.2
    # the SNR refers to the speech, not to the silence around it: padding leaves the noise level alone
    padded = np.concatenate([np.zeros(audio.size, np.float32), audio, np.zeros(audio.size, np.float32)])
    padded_noise = augment.add_noise(padded, 10.0, seed=3, colour=colour) - padded
    assert np.sqrt(np.mean(padded_noise.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(noise ** 2)), rel=0.05)
    # power spectrum slope ~ 1/f^a: share of the noise power below 1 kHz (1/8 of the band for white)
    power = np.abs(np.fft.rfft(noise)) ** 2
    low_share = power[: power.size // 8].sum() / power.sum()
    expected = {"white": (0.10, 0.15), "pink": (0.5, 0.95), "brown": (0.98, 1.0)}[colour]
    assert expected[0] <= low_share <= expected[1]


@pytest.mark.parametrize("length", [1, 1000, 16001, 17011])
def test_training_noise_is_single_precision_and_the_corpus_noise_double(length):
    from deepspeech2.data.noise import coloured_noise

    for colour in ("white", "pink", "brown"):
        fast = coloured_noise(length, colour, np.random.default_rng(0), single=True)
        exact = coloured_noise(length, colour, np.random.default_rng(0))
        assert (fast.dtype, exact.dtype, fast.shape, exact.shape) == (np.float32, np.float64, (length,), (length,))
        if length > 1:
            for noise in (fast, exact):
                assert abs(noise.mean()) < 1e-5 and np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1, rel=1e-4)


def test_mixed_noise_colours_vary_and_leave_the_other_choices_alone():
    mixed = dataclasses.replace(ON, noise_colour="mixed")
    draws = [augment.draw(mixed, 1, k, 0) for k in range(40)]
    assert {d.noise_colour for d in draws} == {"white", "pink", "brown"}
    singles = [augment.draw(ON, 1, k, 0) for k in range(40)]
    assert all(d.noise_colour == "white" for d in singles)
    assert [dataclasses.replace(d, noise_colour="white") for d in draws] == singles


def test_masks_stay_within_bounds_and_limits():
    feats = np.ones((80, 120), np.float32)
    for k in range(50):
        choice = augment.draw(ON, seed=5, k=k, position=0)
        out = augment.spec_augment(feats, choice, ON.time_mask_max_ratio)
        assert out.shape == feats.shape
        zero_rows = np.flatnonzero((out == 0).all(axis=1))
        zero_cols = np.flatnonzero((out == 0).all(axis=0))
        assert len(zero_rows) <= ON.freq_masks * ON.freq_mask_width
        # each time mask covers at most 20 % of 120 frames = 24
        assert len(zero_cols) <= ON.time_masks * int(ON.time_mask_max_ratio * feats.shape[1])
        rows, cols = np.zeros(80, bool), np.zeros(120, bool)
        rows[zero_rows], cols[zero_cols] = True, True
        assert np.array_equal(out == 0, rows[:, None] | cols[None, :])   # only whole bands and spans
    assert feats.min() == 1.0          # the input is never modified in place


def test_same_seed_same_draw_other_batch_other_draw():
    assert augment.draw(ON, 1, 7, 2) == augment.draw(ON, 1, 7, 2)
    draws = {augment.draw(ON, 1, k, 0) for k in range(20)}
    assert len(draws) > 1
    assert augment.draw(ON, 1, 7, 2, speed=1.1).speed == 1.1
    speeds = [augment.speed_of(ON, 1, epoch, i) for epoch in range(3) for i in range(40)]
    assert set(speeds) == {0.9, 1.0, 1.1} and speeds == [augment.speed_of(ON, 1, e, i) for e in range(3) for i in range(40)]
    assert speeds[:40] != speeds[40:80]                                   # drawn anew every epoch
    assert speeds != [augment.speed_of(ON, 2, e, i) for e in range(3) for i in range(40)]
    assert augment.speed_of(AugmentConfig(), 1, 0, 0) == 1.0


def _augmenting_config(prepared_corpus, tmp_path, **augment_keys):
    overrides = [f"data.train_manifest={prepared_corpus / 'libri_train_manifest.json'}",
                 f"train.output_dir={tmp_path}", "model.conv_stack=small_t4", "features.type=fbank",
                 "features.window_size=0.025"]
    overrides += [f"data.augment.{k}={v}" for k, v in augment_keys.items()]
    return load_config(None, overrides)


def test_pipeline_augments_training_only_and_deterministically(prepared_corpus, tmp_path):
    from deepspeech2.data.dataset import BatchSource, load_utterances, training_schedule
    from deepspeech2.data.vocab import build_vocab

    cfg = _augmenting_config(prepared_corpus, tmp_path, speed_perturb=0.1, freq_masks=2, time_masks=2)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=2))
    vocab = build_vocab(cfg)
    utts, _ = load_utterances(cfg.data.train_manifest, vocab, cfg, training=True)
    batches, epoch_of = training_schedule(utts, cfg, epochs=2)
    train_a = BatchSource(utts, batches, vocab, cfg, training=True, epoch_of=epoch_of)
    train_b = BatchSource(utts, batches, vocab, cfg, training=True, epoch_of=epoch_of)
    plain = BatchSource(utts, batches, vocab, cfg, training=False)
    for k in range(len(batches)):
        a, b, p = train_a[k], train_b[k], plain[k]
        np.testing.assert_array_equal(a[0], b[0])                 # same seed, same batch
        for pos, i in enumerate(a[4]):
            speed = augment.speed_of(cfg.data.augment, cfg.train.seed, epoch_of[k], i)
            assert train_a.choices(k)[pos].speed == speed
            expected = num_frames(int(round(utts[i].duration * 16000)), cfg.features)
            assert abs(a[1][pos] - expected / speed) <= 2          # lengths follow the speed factor
            assert p[1][pos] == expected                            # evaluation: untouched
    other_seed = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=2))
    assert any(not np.array_equal(BatchSource(utts, batches, vocab, other_seed, training=True, epoch_of=epoch_of)[k][0],
                                  train_a[k][0]) for k in range(len(batches)))


def test_epochs_before_start_epoch_train_on_the_recorded_audio(prepared_corpus, tmp_path):
    """start_epoch 1: epoch 0 has the batches and features of a run without augmentation; epoch 1 those of a
    run augmented from the start."""
    from deepspeech2.data.dataset import BatchSource, load_utterances, training_schedule
    from deepspeech2.data.vocab import build_vocab

    keys = dict(speed_perturb=0.1, noise_prob=1.0, time_masks=2)
    runs = {start: _augmenting_config(prepared_corpus, tmp_path, start_epoch=start, **keys) for start in (0, 1)}
    runs["plain"] = _augmenting_config(prepared_corpus, tmp_path)
    vocab = build_vocab(runs[0])
    utts, _ = load_utterances(runs[0].data.train_manifest, vocab, runs[0], training=True)
    sources = {}
    for name, cfg in runs.items():
        batches, epoch_of = training_schedule(utts, cfg, epochs=2)
        sources[name] = BatchSource(utts, batches, vocab, cfg, training=True, epoch_of=epoch_of)
    late, early, plain = sources[1], sources[0], sources["plain"]
    per_epoch = len(plain.schedule) // 2
    assert late.schedule[:per_epoch] == plain.schedule[:per_epoch]
    assert late.schedule[per_epoch:] == early.schedule[per_epoch:] != plain.schedule[per_epoch:]
    for k in (0, per_epoch - 1):
        assert late.choices(k) == [augment.UNCHANGED] * len(late.schedule[k])
        np.testing.assert_array_equal(late[k][0], plain[k][0])
    for k in (per_epoch, 2 * per_epoch - 1):
        assert late.choices(k) == early.choices(k) and all(c.noise_snr_db is not None for c in late.choices(k))
        np.testing.assert_array_equal(late[k][0], early[k][0])
    counts = augment.count(c for k in range(per_epoch) for c in late.choices(k))
    assert counts["noisy"] == counts["time_masks"] == 0 and set(counts["speed"]) == {"1"}


def test_each_epoch_groups_utterances_by_their_length_at_the_speed_drawn_for_them(prepared_corpus, tmp_path):
    """Every utterance once per epoch; a batch holds neighbours in perturbed length (so it pads little),
    which differ between epochs; without speed perturbation every epoch has the same batches."""
    from deepspeech2.data.dataset import load_utterances, make_batches, training_schedule
    from deepspeech2.data.vocab import build_vocab

    cfg = _augmenting_config(prepared_corpus, tmp_path, speed_perturb=0.1)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=2, shuffle=False))
    vocab = build_vocab(cfg)
    utts, _ = load_utterances(cfg.data.train_manifest, vocab, cfg, training=True)
    batches, epoch_of = training_schedule(utts, cfg, epochs=3)
    per_epoch = len(make_batches(utts, 2))
    assert epoch_of == [e for e in range(3) for _ in range(per_epoch)]
    for epoch in range(3):
        mine = batches[epoch * per_epoch:(epoch + 1) * per_epoch]
        assert sorted(i for batch in mine for i in batch) == list(range(len(utts)))
        perturbed = [utts[i].n_frames / augment.speed_of(cfg.data.augment, cfg.train.seed, epoch, i) for batch in mine
                     for i in batch]
        assert perturbed == sorted(perturbed)                              # unshuffled: ascending
    assert batches[:per_epoch] != batches[per_epoch:2 * per_epoch]
    still = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, augment=AugmentConfig()))
    plain, _ = training_schedule(utts, still, epochs=2)
    assert plain == make_batches(utts, 2) * 2


def test_ctc_filter_allows_for_the_fastest_speed(prepared_corpus, tmp_path):
    from deepspeech2.data.dataset import ctc_min_frames, load_utterances
    from deepspeech2.data.shapes import conv_stack, output_lengths
    from deepspeech2.data.vocab import build_vocab

    cfg = _augmenting_config(prepared_corpus, tmp_path, speed_perturb=0.3)
    vocab = build_vocab(cfg)
    utts, _ = load_utterances(cfg.data.train_manifest, vocab, cfg, training=True)
    plain, _ = load_utterances(cfg.data.train_manifest, vocab, _augmenting_config(prepared_corpus, tmp_path), True)
    assert len(utts) <= len(plain)
    for utt in utts:   # every kept utterance stays alignable when played 1.3x faster
        fewest = num_frames(int(utt.duration * 16000 / 1.3), cfg.features)
        assert output_lengths(fewest, conv_stack(cfg.model)) >= ctc_min_frames(vocab.encode(utt.transcript))


def test_vtlp_warp_keeps_the_band_ends_and_moves_formants_by_the_factor():
    from deepspeech2.data.features import VTLP_BOUNDARY, vtlp_frequencies

    nyquist = 8000.0
    freqs = np.linspace(0.0, nyquist, 2001)
    for warp in (0.9, 0.95, 1.05, 1.1):
        moved = vtlp_frequencies(freqs, warp, nyquist)
        assert moved[0] == 0.0 and moved[-1] == pytest.approx(nyquist)
        assert np.all(np.diff(moved) > 0)                                   # monotonic: no band folds over
        low = freqs <= VTLP_BOUNDARY * nyquist * min(warp, 1.0) / warp
        np.testing.assert_allclose(moved[low], warp * freqs[low])          # formants scale by the factor
        assert np.max(np.abs(np.diff(moved))) < 2 * (freqs[1] - freqs[0])  # continuous at the bend
    np.testing.assert_array_equal(vtlp_frequencies(freqs, 1.0, nyquist), freqs)


@pytest.mark.parametrize("warp", [0.9, 1.1])
def test_vtlp_fbank_of_a_tone_looks_like_the_scaled_tone(warp):
    cfg = FeatureConfig(type="fbank", window_size=0.025, normalize=False)
    t = np.arange(16000) / 16000

    def tone(hz):
        return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)

    warped = compute_features(tone(1000.0), cfg, warp)
    scaled = compute_features(tone(1000.0 * warp), cfg)
    assert warped.shape == scaled.shape                                    # frames unchanged: pitch, not tempo
    peak = lambda feats: int(np.argmax(feats[:, feats.shape[1] // 2]))   # noqa: E731
    assert peak(warped) == peak(scaled) != peak(compute_features(tone(1000.0), cfg))
    with pytest.raises(ValueError, match="VTLP .* needs features.type=fbank"):
        compute_features(tone(1000.0), FeatureConfig(), warp)


def test_vtlp_draw_is_last_bounded_and_counted():
    vtlp = dataclasses.replace(ON, vtlp=0.1)
    assert augment.enabled(AugmentConfig(vtlp=0.1))
    draws = [augment.draw(vtlp, 1, k, 0) for k in range(60)]
    assert all(0.9 <= d.warp <= 1.1 and d.warp == round(d.warp, 2) for d in draws)
    assert len({d.warp for d in draws}) > 5
    # the other choices are those of the same run without VTLP (their streams are unchanged)
    assert [dataclasses.replace(d, warp=1.0) for d in draws] == [augment.draw(ON, 1, k, 0) for k in range(60)]
    assert augment.count(draws)["warped"] == sum(d.warp != 1.0 for d in draws) > 0
    assert augment.count(augment.draw(ON, 1, k, 0, speed=0.9) for k in range(4)) == {
        "speed": {"0.9": 4}, "noisy": sum(augment.draw(ON, 1, k, 0).noise_snr_db is not None for k in range(4)),
        "warped": 0, "freq_masks": sum(w > 0 for k in range(4) for _, w in augment.draw(ON, 1, k, 0).freq_masks),
        "time_masks": sum(w > 0 for k in range(4) for _, w in augment.draw(ON, 1, k, 0).time_masks)}


def test_vtlp_is_refused_for_the_spectrogram_and_out_of_range():
    from deepspeech2.core.config import ConfigError

    with pytest.raises(ConfigError, match="data.augment.vtlp: needs features.type=fbank, got features.type='spectrogram'"):
        load_config(None, ["data.augment.vtlp=0.1"])
    with pytest.raises(ConfigError, match=r"data.augment.vtlp: must be in \[0, 0.5\)"):
        load_config(None, ["features.type=fbank", "data.augment.vtlp=0.5"])
    assert load_config(None, ["features.type=fbank", "data.augment.vtlp=0.1"]).data.augment.vtlp == 0.1


def test_pipeline_warps_features_without_changing_lengths(prepared_corpus, tmp_path):
    from deepspeech2.data.dataset import BatchSource, load_utterances, make_batches
    from deepspeech2.data.vocab import build_vocab

    cfg = _augmenting_config(prepared_corpus, tmp_path, vtlp=0.1)
    vocab = build_vocab(cfg)
    utts, _ = load_utterances(cfg.data.train_manifest, vocab, cfg, training=True)
    batches = make_batches(utts, 2)
    warped, plain = BatchSource(utts, batches, vocab, cfg, training=True), BatchSource(utts, batches, vocab, cfg, training=False)
    changed = 0
    for k in range(len(batches)):
        w, p = warped[k], plain[k]
        np.testing.assert_array_equal(w[1], p[1])                       # VTLP keeps every length
        for pos in range(len(w[1])):
            same = np.array_equal(w[0][pos], p[0][pos])
            assert same == (augment.draw(cfg.data.augment, cfg.train.seed, k, pos).warp == 1.0)
            changed += not same
    assert changed > 0
