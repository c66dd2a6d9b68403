"""Speed and memory measurements behind ``ds2-bench`` (see :mod:`deepspeech2.cli.bench`); medians: the machines are noisy."""
from __future__ import annotations

import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np

__all__ = ["gemm_gflops", "peak_rss_gb", "epoch_hours", "emit", "bench_train_step", "bench_infer", "bench_data",
           "TRAIN_CLEAN_100_HOURS"]

TRAIN_CLEAN_100_HOURS = 100.6      # audio in one train-clean-100 epoch
CHARS_PER_SECOND = 15              # synthetic targets: LibriSpeech reads ~15 characters per second
TRAIN_FLOPS_PER_FORWARD = 3.0      # forward + backward ≈ 3 × forward
GEMM_SIZE = 2048


def _median_gflops(matmul, size: int, repeats: int) -> float:
    matmul()                                                  # warm-up (and compile)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        matmul()
        times.append(time.perf_counter() - t0)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def gemm_gflops(repeats: int = 5, size: int = GEMM_SIZE, threads: int = 0) -> dict[str, float]:
    """Median fp32 GFLOP/s of an n×n matmul with numpy's BLAS and with MindSpore's CPU kernel (oneDNN at the
    CPU's full ISA: models without oneDNN convs run so, see ``model.conv_impl``); ``gflops`` is the better —
    the practical ceiling."""
    import mindspore
    from mindspore import Tensor, ops

    from deepspeech2.core.device import init_device

    init_device("CPU", 0, threads, onednn_conv=False)
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    numpy_rate = _median_gflops(lambda: a @ b, size, repeats)
    ta, tb = Tensor(a), Tensor(b)
    product = mindspore.jit(ops.matmul)
    ms_rate = _median_gflops(lambda: product(ta, tb).asnumpy(), size, repeats)
    return {"gflops": max(numpy_rate, ms_rate), "numpy_gflops": numpy_rate, "mindspore_gflops": ms_rate}


def peak_rss_gb() -> float:
    """Peak resident memory of this process (GB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def epoch_hours(audio_s_per_s: float, epoch_audio_hours: float = TRAIN_CLEAN_100_HOURS) -> float:
    """Wall hours for one epoch at this throughput."""
    return epoch_audio_hours / audio_s_per_s if audio_s_per_s > 0 else float("inf")


def emit(record: dict, json_path: str | None) -> None:
    print(json.dumps(record), flush=True)
    if json_path:
        with open(json_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def _synthetic_batch(cfg, batch: int, seconds: float, pad_to: int, vocab_size: int, blank: int, seed: int = 0):
    """Random features/targets of real shapes: compute cost does not depend on the values."""
    from deepspeech2.data.features import num_frames, num_freq_bins
    from deepspeech2.data.shapes import conv_stack, output_lengths

    rng = np.random.default_rng(seed)
    frames = num_frames(int(seconds * cfg.features.sample_rate), cfg.features)
    t_pad = max(frames, pad_to)
    feats = rng.standard_normal((batch, 1, num_freq_bins(cfg.features), t_pad)).astype(np.float32)
    feats[..., frames:] = 0
    lengths = np.full(batch, frames, np.int32)
    n_target = min(int(seconds * CHARS_PER_SECOND), int(output_lengths(frames, conv_stack(cfg.model))) // 2)
    choices = [i for i in range(vocab_size) if i != blank]
    targets = rng.choice(choices, size=(batch, n_target)).astype(np.int32)
    return feats, lengths, targets, np.full(batch, n_target, np.int32)


def op_times(profile_dir: str | Path, steps: int) -> dict[str, float]:
    """Milliseconds per step of each op type in a MindSpore CPU profile (``cpu_op_type_info_*.csv``),
    largest first. Ops of different types may overlap in time, so the sum can exceed the step time."""
    import csv

    totals: dict[str, float] = {}
    for path in Path(profile_dir).rglob("cpu_op_type_info_*.csv"):
        with open(path, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                totals[row["op_type"]] = totals.get(row["op_type"], 0.0) + float(row["total_compute_time"]) / steps
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def bench_train_step(cfg, batch: int, seconds: float, steps: int, warmup: int, pad_to: int,
                     profile_dir: str | None = None) -> dict:
    """Time ``steps`` training steps after ``warmup`` (compilation) steps on one batch shape; with
    ``profile_dir``, run ``steps`` more under MindSpore's profiler and add ``op_ms_per_step``."""
    from mindspore import Tensor

    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.build import build_network, init_device_for
    from deepspeech2.training.optimizer import build_optimizer
    from deepspeech2.core.device import use_graph_mode
    from deepspeech2.model.loss import CTCLoss
    from deepspeech2.model.network import analytic_flops
    from deepspeech2.training.step import make_train_step

    init_device_for(cfg)
    vocab = build_vocab(cfg)
    net = build_network(cfg, vocab)
    optimizer = build_optimizer(net, cfg)
    net.set_train(True)
    step, _ = make_train_step(net, CTCLoss(vocab.blank, impl=cfg.model.ctc_impl), optimizer, cfg, None, use_graph_mode(cfg.train.mode))
    arrays = _synthetic_batch(cfg, batch, seconds, pad_to, len(vocab), vocab.blank)
    inputs = [Tensor(a) for a in arrays] + [Tensor(np.float32(cfg.optim.lr))]
    t_first = time.perf_counter()
    for _ in range(max(1, warmup)):
        float(step(*inputs)[0].asnumpy())
    first = time.perf_counter() - t_first
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        float(step(*inputs)[0].asnumpy())
        times.append(time.perf_counter() - t0)
    cores_busy = (time.process_time() - cpu0) / (time.perf_counter() - wall0)   # CPU-s per wall-s, all threads
    s_step = statistics.median(times)
    t_pad = arrays[0].shape[-1]
    flops = TRAIN_FLOPS_PER_FORWARD * analytic_flops(cfg.model, cfg.features, t_pad, batch)
    audio_rate = batch * seconds / s_step
    profile = {}
    if profile_dir:
        from mindspore import Profiler

        profiler = Profiler(output_path=str(profile_dir))
        for _ in range(steps):
            float(step(*inputs)[0].asnumpy())
        profiler.analyse()
        profile = {"op_ms_per_step": op_times(profile_dir, steps)}
    return {**profile, "s_per_step": s_step, "step_times": times, "warmup_s": first, "audio_s_per_s": audio_rate,
            "cores_busy": cores_busy,
            "gflops": flops / s_step / 1e9, "epoch_hours": epoch_hours(audio_rate), "peak_rss_gb": peak_rss_gb(),
            "padded_frames": t_pad}


def bench_infer(cfg, batch: int, seconds: float, repeats: int, mindir: str | None) -> dict:
    """Median forward time of the checkpoint network (GRAPH) and, if given, of its MINDIR."""
    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.build import build_network, init_device_for, wrap_network
    from deepspeech2.inference.acoustic import load_acoustic_model

    init_device_for(cfg)
    vocab = build_vocab(cfg)
    forwards = {"checkpoint": wrap_network(build_network(cfg, vocab))}
    if mindir:
        forwards["mindir"] = load_acoustic_model(mindir, cfg).forward
    feats, lengths, _, _ = _synthetic_batch(cfg, batch, seconds, 0, len(vocab), vocab.blank)
    record = {}
    for name, forward in forwards.items():
        forward(feats, lengths)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            forward(feats, lengths)
            times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        record[name] = {"s_per_batch": s, "rtf": s / (batch * seconds), "audio_s_per_s": batch * seconds / s}
    record["peak_rss_gb"] = peak_rss_gb()
    return record


def bench_data(cfg, manifest: str, workers: int, batches: int, augment: bool = False) -> dict:
    """Throughput of the feature pipeline alone (no model) with ``workers`` workers; with ``augment``,
    the training pipeline (``data.augment`` applied, as ``ds2-train`` feeds the step)."""
    from dataclasses import replace

    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.data.dataset import BatchSource, create_dataset, load_utterances, make_batches

    cfg = replace(cfg, data=replace(cfg.data, num_workers=workers, feature_cache_dir=""))
    vocab = build_vocab(cfg)
    utts, _ = load_utterances(manifest, vocab, cfg, training=True)
    plan = make_batches(utts, cfg.data.batch_size)
    schedule = [plan[i % len(plan)] for i in range(batches + 1)]
    source = BatchSource(utts, schedule, vocab, cfg, training=augment)
    iterator = create_dataset(source, cfg.data).create_tuple_iterator(num_epochs=1, output_numpy=True)
    next(iterator)  # start-up (worker launch) is not counted
    t0, n_utts, audio = time.perf_counter(), 0, 0.0
    for *_, indices in iterator:
        n_utts += len(indices)
        audio += sum(utts[i].duration for i in indices)
    wall = time.perf_counter() - t0
    return {"workers": workers, "processes": cfg.data.python_multiprocessing, "augment": augment,
            "utts_per_s": n_utts / wall, "audio_s_per_s": audio / wall, "batches": batches}
