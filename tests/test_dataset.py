import os

import numpy as np
import pytest
import soundfile

from deepspeech2.data.audio import load_audio
from deepspeech2.core.config import DataConfig, load_config
from deepspeech2.core.config_rules import MAX_NICE
from deepspeech2.data.dataset import (BatchSource, create_dataset, ctc_min_frames, epoch_batches, load_utterances,
                                 make_batches)
from deepspeech2.data.features import spectrogram
from deepspeech2.data.manifest import read_manifest
from deepspeech2.data.vocab import Vocab


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2, 2, 2]) == 8
    assert ctc_min_frames([]) == 0


def _bad_manifest(tmp_path, good_wav):
    """A CSV manifest with one good entry and one of each kind of bad entry."""
    rows = []

    def add(name, wav, text):
        txt = tmp_path / f"{name}.txt"
        txt.write_text(text)
        rows.append(f"{wav},{txt}")

    add("good", good_wav, "HELLO WORLD")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + b"\0" * 40)
    add("corrupt", corrupt, "HELLO")
    add("missing", tmp_path / "missing.wav", "HELLO")
    add("empty", good_wav, "   ")
    add("oov", good_wav, "HELLO 42")
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(1600, np.int16), 16000, subtype="PCM_16")  # 0.1 s: 6 output frames
    add("short", short, "THIS TRANSCRIPT IS FAR TOO LONG FOR A TENTH OF A SECOND")
    path = tmp_path / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_bad_entries_are_dropped_with_reasons(tmp_path, prepared_corpus):
    good = read_manifest(prepared_corpus / "libri_test_clean_manifest.json")[0].wav_path
    manifest = _bad_manifest(tmp_path, good)
    cfg = load_config(None)
    utts, dropped = load_utterances(manifest, Vocab(), cfg, training=True)
    assert [u.transcript for u in utts] == ["HELLO WORLD"]
    assert dropped == {"unreadable audio": 2, "empty transcript": 1, "out-of-vocabulary characters": 1,
                       "too short for its transcript": 1}
    utts, dropped = load_utterances(manifest, Vocab(), cfg, training=False)  # eval keeps short ones
    assert len(utts) == 2 and "too short for its transcript" not in dropped


def test_nothing_usable_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("HI")
    path = tmp_path / "m.csv"
    path.write_text(f"{tmp_path / 'nope.wav'},{tmp_path / 'a.txt'}\n")
    with pytest.raises(ValueError, match="no usable utterances"):
        load_utterances(path, Vocab(), load_config(None))


def test_batches_sortagrad_shuffle_and_shards():
    batches = [[i] for i in range(10)]
    cfg = DataConfig(sortagrad=True, shuffle=True)
    assert epoch_batches(batches, 0, cfg, seed=1) == batches
    e1 = epoch_batches(batches, 1, cfg, seed=1)
    assert sorted(e1) == batches and e1 != batches
    assert e1 == epoch_batches(batches, 1, cfg, seed=1)
    assert e1 != epoch_batches(batches, 2, cfg, seed=1)
    r0, r1 = (epoch_batches(batches, 1, cfg, 1, rank=r, world=2) for r in (0, 1))
    assert len(r0) == len(r1) == 5 and not set(map(tuple, r0)) & set(map(tuple, r1))
    with pytest.raises(ValueError, match="ranks"):
        epoch_batches(batches[:1], 0, cfg, 1, world=2)


def test_batch_source_pads_and_matches_features(tiny_config):
    vocab = Vocab()
    utts, _ = load_utterances(tiny_config.data.train_manifest, vocab, tiny_config, training=True)
    plan = make_batches(utts, 3)
    frames = [utts[i].n_frames for b in plan for i in b]
    assert frames == sorted(frames)
    source = BatchSource(utts, plan, vocab, tiny_config)
    feats, lengths, targets, target_lengths, indices = source[len(plan) - 1]
    assert feats.shape[-1] % tiny_config.data.bucket_frames == 0 and feats.shape[-1] >= lengths.max()
    for row, idx in enumerate(indices):
        utt = utts[idx]
        ref = spectrogram(load_audio(utt.wav_path, 16000), tiny_config.features)
        assert lengths[row] == ref.shape[1] == utt.n_frames
        np.testing.assert_array_equal(feats[row, 0, :, :lengths[row]], ref)
        assert not feats[row, 0, :, lengths[row]:].any()
        assert vocab.decode(targets[row, :target_lengths[row]]) == utt.transcript


def test_pipeline_with_workers_equals_source_and_resumes(tiny_config):
    vocab = Vocab()
    utts, _ = load_utterances(tiny_config.data.train_manifest, vocab, tiny_config, training=True)
    source = BatchSource(utts, make_batches(utts, 2), vocab, tiny_config)
    data_cfg = DataConfig(num_workers=2, python_multiprocessing=True)
    got = list(create_dataset(source, data_cfg, start=1).create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(got) == len(source) - 1
    for k, batch in enumerate(got, start=1):
        for a, b in zip(batch, source[k]):
            np.testing.assert_array_equal(a, b)


def test_more_workers_than_cores_are_capped_with_a_warning(tiny_config, caplog):
    vocab = Vocab()
    utts, _ = load_utterances(tiny_config.data.train_manifest, vocab, tiny_config, training=True)
    source = BatchSource(utts, make_batches(utts, 2)[:2], vocab, tiny_config)
    data_cfg = DataConfig(num_workers=4 * (os.cpu_count() or 1), python_multiprocessing=False)
    got = list(create_dataset(source, data_cfg).create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(got) == 2
    assert "CPU cores: using" in caplog.text


def test_workers_lower_their_own_priority_not_the_steps(tiny_config):
    """data.worker_nice: the pipeline's worker threads run at a higher niceness; the thread that built
    the source (the training step's) keeps its own."""
    import dataclasses

    seen = []

    class Recording(BatchSource):
        def __getitem__(self, k):
            item = super().__getitem__(k)
            seen.append(os.getpriority(os.PRIO_PROCESS, 0))   # Linux: the calling thread's niceness
            return item

    vocab = Vocab()
    utts, _ = load_utterances(tiny_config.data.train_manifest, vocab, tiny_config, training=True)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    cfg = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, worker_nice=5))
    source = Recording(utts, make_batches(utts, 2)[:3], vocab, cfg)
    source[0]                                                   # the owner's own call: no change
    data_cfg = DataConfig(num_workers=2, python_multiprocessing=False)
    got = list(create_dataset(source, data_cfg).create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(got) == 3 and os.getpriority(os.PRIO_PROCESS, 0) == own
    assert seen[0] == own and seen[1:] and set(seen[1:]) == {min(own + 5, MAX_NICE)}
