"""Manifest → filtered utterances → length-bucketed, padded batches in a ``mindspore.dataset`` pipeline.

The whole run (every epoch) is one random-access sequence of batches, item ``k`` being global step
``k``: one iterator serves all epochs (workers are not restarted) and resuming at step ``k`` replays
exactly the data order of an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepspeech2.data import augment
from deepspeech2.data.audio import AudioError, audio_duration, load_audio
from deepspeech2.core.files import atomic_path
from deepspeech2.core.config import Config, DataConfig, FeatureConfig, ModelConfig
from deepspeech2.core.config_rules import MAX_NICE
from deepspeech2.data.features import compute_features, num_frames
from deepspeech2.data.manifest import read_manifest
from deepspeech2.data.shapes import conv_stack, output_lengths
from deepspeech2.data.vocab import Vocab, normalize_transcript

__all__ = ["Utterance", "load_utterances", "ctc_min_frames", "make_batches", "BatchSource",
           "epoch_batches", "training_schedule", "create_dataset", "COLUMNS"]

log = logging.getLogger(__name__)
COLUMNS = ["features", "feature_lengths", "targets", "target_lengths", "indices"]
TARGET_PAD = 0  # value of padded target positions (ignored by CTC beyond target_lengths)


@dataclass(frozen=True)
class Utterance:
    """One usable manifest entry."""

    utt_id: str
    wav_path: str
    transcript: str
    duration: float          # seconds, from the audio header
    n_frames: int            # spectrogram frames


def ctc_min_frames(label_ids: list[int]) -> int:
    """Frames CTC needs to emit ``label_ids``: one per label plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(label_ids, label_ids[1:]) if a == b)
    return len(label_ids) + repeats


def _check_entry(sample, vocab: Vocab, feature_cfg: FeatureConfig, model_cfg: ModelConfig,
                 limits: tuple[float, float], training: bool,
                 fastest: float = 1.0) -> tuple[Utterance | None, str]:
    """Validate one manifest entry; returns (utterance, "") or (None, drop reason). Training
    entries must stay CTC-alignable even when sped up by the ``fastest`` perturbation factor."""
    try:
        duration = audio_duration(sample.wav_path)
    except AudioError:
        return None, "unreadable audio"
    try:
        text = normalize_transcript(Path(sample.transcript_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None, "unreadable transcript"
    if not text:
        return None, "empty transcript"
    if vocab.oov_chars(text):
        return None, "out-of-vocabulary characters"
    min_dur, max_dur = limits
    if (min_dur > 0 and duration < min_dur) or (max_dur > 0 and duration > max_dur):
        return None, "duration outside limits"
    frames = num_frames(int(round(duration * feature_cfg.sample_rate)), feature_cfg)
    fewest = num_frames(int(duration * feature_cfg.sample_rate / fastest), feature_cfg)
    if training and int(output_lengths(fewest, conv_stack(model_cfg))) < ctc_min_frames(vocab.encode(text)):
        return None, "too short for its transcript"
    utt_id = Path(sample.wav_path).stem
    return Utterance(utt_id, str(sample.wav_path), text, duration, frames), ""


def load_utterances(manifest: str | Path, vocab: Vocab, cfg: Config,
                    training: bool = False) -> tuple[list[Utterance], Counter]:
    """Read a manifest and keep the entries CTC can train/evaluate on, in manifest order.

    Drops (logged with file and reason, counted): unreadable audio or transcript, empty or
    out-of-vocabulary transcripts and — for training only — durations outside the limits and
    utterances whose model output is shorter than CTC needs (the MindSpore CTC kernel aborts on
    those; evaluation keeps them and leaves them out of the loss only).
    """
    limits = (cfg.data.min_duration, cfg.data.max_duration) if training else (0.0, 0.0)
    kept: list[Utterance] = []
    dropped: Counter = Counter()
    for sample in read_manifest(manifest):
        utt, reason = _check_entry(sample, vocab, cfg.features, cfg.model, limits, training,
                                   augment.fastest_factor(cfg.data.augment) if training else 1.0)
        if utt is None:
            dropped[reason] += 1
            log.warning("%s: dropped %s (%s)", manifest, sample.wav_path, reason)
        else:
            kept.append(utt)
    if not kept:
        raise ValueError(f"{manifest}: no usable utterances (dropped: {dict(dropped)})")
    log.info("%s: %d utterances (%.2f h) kept, dropped %s", manifest, len(kept),
             sum(u.duration for u in kept) / 3600, dict(dropped) or "none")
    return kept, dropped


def make_batches(utts: list[Utterance], batch_size: int, frames: list[float] | None = None) -> list[list[int]]:
    """Group utterance indices by length (``frames``, default their spectrogram frames): sorted
    ascending, then consecutive chunks."""
    length = frames or [u.n_frames for u in utts]
    order = sorted(range(len(utts)), key=lambda i: (length[i], utts[i].utt_id))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def epoch_batches(batches: list[list[int]], epoch: int, data_cfg: DataConfig, seed: int,
                  rank: int = 0, world: int = 1) -> list[list[int]]:
    """Batch order of one epoch: ascending in epoch 0 with SortaGrad, else shuffled by (seed, epoch);
    then this rank's shard (every rank gets the same number of batches)."""
    order = list(range(len(batches)))
    if data_cfg.shuffle and not (data_cfg.sortagrad and epoch == 0):
        np.random.default_rng([seed, epoch]).shuffle(order)
    per_rank = len(order) // world
    if per_rank == 0:
        raise ValueError(f"{len(batches)} batches cannot be shared by {world} ranks; lower batch_size")
    return [batches[i] for i in order[rank * per_rank:(rank + 1) * per_rank]]


def training_schedule(utts: list[Utterance], cfg: Config, epochs: int, rank: int = 0,
                      world: int = 1) -> tuple[list[list[int]], list[int]]:
    """Every epoch's batches of this rank, one after the other, and the epoch of each batch. Each
    epoch groups the utterances by their length at the speed drawn for them that epoch
    (``augment.speed_of``; without speed perturbation the grouping is the same every epoch)."""
    schedule: list[list[int]] = []
    epoch_of: list[int] = []
    for epoch in range(epochs):
        frames = [u.n_frames / augment.speed_of(cfg.data.augment, cfg.train.seed, epoch, i)
                  for i, u in enumerate(utts)]
        batches = epoch_batches(make_batches(utts, cfg.data.batch_size, frames), epoch, cfg.data, cfg.train.seed,
                                rank, world)
        schedule += batches
        epoch_of += [epoch] * len(batches)
    return schedule, epoch_of


class BatchSource:
    """Random-access source: item k = padded batch k of the flattened multi-epoch schedule.

    Each item: features (N, 1, F, Tpad) float32, feature_lengths (N,) int32, targets (N, Smax) int32,
    target_lengths (N,) int32, indices (N,) int32 (positions in ``utts``). ``epoch_of`` (training):
    the epoch of each batch, which draws its utterances' speed factors (default: epoch 0).
    """

    def __init__(self, utts: list[Utterance], schedule: list[list[int]], vocab: Vocab, cfg: Config,
                 training: bool = False, epoch_of: list[int] | None = None):
        self.utts, self.schedule, self.vocab = utts, schedule, vocab
        self.epoch_of = epoch_of
        self.augment = cfg.data.augment if training and augment.enabled(cfg.data.augment) else None
        self.seed = cfg.train.seed
        self.feature_cfg = cfg.features
        self.bucket = max(1, cfg.data.bucket_frames)
        self.cache_dir = Path(cfg.data.feature_cache_dir) if cfg.data.feature_cache_dir else None
        self._owner = _thread_id()      # the thread that builds the source (the step's) keeps its priority
        self._worker_niceness = min(os.getpriority(os.PRIO_PROCESS, 0) + cfg.data.worker_nice, MAX_NICE)

    def __len__(self) -> int:
        return len(self.schedule)

    def _features(self, utt: Utterance) -> np.ndarray:
        """(F, T) spectrogram, read from / written to the feature cache when enabled."""
        cache = None
        if self.cache_dir is not None:
            stat = os.stat(utt.wav_path)   # a file regenerated at the same path gets new features
            key = hashlib.sha1(f"{utt.wav_path}|{stat.st_size}|{stat.st_mtime_ns}|{self.feature_cfg}".encode()).hexdigest()
            cache = self.cache_dir / key[:2] / f"{key}.npy"
            if cache.exists():
                return np.load(cache)
        feats = compute_features(load_audio(utt.wav_path, self.feature_cfg.sample_rate), self.feature_cfg)
        if cache is not None:
            with atomic_path(cache) as tmp, open(tmp, "xb") as fh:
                np.save(fh, feats)
        return feats

    def choices(self, k: int) -> list[augment.Choice]:
        """The augmentation of each utterance of batch ``k`` (training with augmentation only)."""
        epoch = self.epoch_of[k] if self.epoch_of else 0
        return [augment.draw(self.augment, self.seed, k, position,
                             augment.speed_of(self.augment, self.seed, epoch, i), epoch)
                for position, i in enumerate(self.schedule[k])]

    def _augmented(self, utt: Utterance, choice: augment.Choice) -> np.ndarray:
        """(F, T) features of a training utterance after its augmentation ``choice`` (audio-level
        changes bypass the feature cache)."""
        if choice.speed == 1.0 and choice.noise_snr_db is None and choice.warp == 1.0:
            feats = self._features(utt)
        else:
            audio = augment.speed_perturb(load_audio(utt.wav_path, self.feature_cfg.sample_rate), choice.speed)
            if choice.noise_snr_db is not None:
                audio = augment.add_noise(audio, choice.noise_snr_db, choice.noise_seed, choice.noise_colour)
            feats = compute_features(audio, self.feature_cfg, choice.warp)
        return augment.spec_augment(feats, choice, self.augment.time_mask_max_ratio)

    def _lower_priority(self) -> None:
        """In a worker thread/process: run at the owner's niceness + ``data.worker_nice`` (Linux: per
        thread), so that the workers fill the cores the step leaves idle instead of preempting its op threads."""
        if _thread_id() != self._owner and os.getpriority(os.PRIO_PROCESS, 0) < self._worker_niceness:
            os.setpriority(os.PRIO_PROCESS, 0, self._worker_niceness)

    def __getitem__(self, k: int):
        self._lower_priority()
        members = self.schedule[k]
        if self.augment is None:
            feats = [self._features(self.utts[i]) for i in members]
        else:
            feats = [self._augmented(self.utts[i], choice) for i, choice in zip(members, self.choices(k))]
        lengths = np.array([f.shape[1] for f in feats], np.int32)
        t_pad = int(-(-lengths.max() // self.bucket) * self.bucket)
        batch = np.zeros((len(feats), 1, feats[0].shape[0], t_pad), np.float32)
        for row, f in enumerate(feats):
            batch[row, 0, :, :f.shape[1]] = f
        labels = [self.vocab.encode(self.utts[i].transcript) for i in members]
        target_lengths = np.array([len(x) for x in labels], np.int32)
        targets = np.full((len(labels), max(1, int(target_lengths.max()))), TARGET_PAD, np.int32)
        for row, ids in enumerate(labels):
            targets[row, :len(ids)] = ids
        return batch, lengths, targets, target_lengths, np.array(members, np.int32)


def _thread_id() -> tuple[int, int]:
    return os.getpid(), threading.get_native_id()


def create_dataset(source: BatchSource, data_cfg: DataConfig, start: int = 0):
    """A ``GeneratorDataset`` over ``source`` from item ``start``, with parallel workers."""
    import mindspore.dataset as ds

    workers = max(1, data_cfg.num_workers)
    cores = os.cpu_count() or 1
    if workers > cores:   # mindspore.dataset refuses more workers than cores
        log.warning("data.num_workers=%d > %d CPU cores: using %d workers", workers, cores, cores)
        workers = cores
    ds.config.set_prefetch_size(max(1, data_cfg.prefetch_size))
    return ds.GeneratorDataset(
        source, COLUMNS, sampler=ds.SequentialSampler(start_index=start), num_parallel_workers=workers,
        python_multiprocessing=data_cfg.python_multiprocessing and workers > 1)
