"""The training loop behind ``ds2-train`` and the lab's ``train.py`` (see :mod:`deepspeech2.cli.train`).

Checkpoints every ``train.save_interval_steps`` and every epoch (atomic, with a sidecar YAML),
exact resume, SIGINT/SIGTERM save before exiting, best checkpoint chosen on the dev set.

``metrics.jsonl`` holds one JSON record per line: ``{"type": "step", ...}`` every ``train.log_interval``
steps and ``{"type": "epoch", ...}`` (dev loss/WER/CER) after each epoch. In these records and in every
checkpoint's sidecar YAML, ``step`` counts optimizer steps done, ``epoch`` counts epochs *completed*
(an int: ``step // steps_per_epoch``) and ``epoch_progress`` is the same as a fraction (``step / steps_per_epoch``).
"""
from __future__ import annotations

import json
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepspeech2.training import checkpoint as ckpt_io
from deepspeech2.core.config import Config, config_to_dict, save_config
from deepspeech2.core.device import CpuMeter
from deepspeech2.data import augment
from deepspeech2.data.dataset import BatchSource, create_dataset, load_utterances, training_schedule
from deepspeech2.core.files import atomic_write_text
from deepspeech2.core.logs import setup_logging
from deepspeech2.core.signals import StopRequest
from deepspeech2.model.amp import loss_scale_value
from deepspeech2.training.schedule import lr_at

__all__ = ["TrainingError", "train", "trim_metrics", "EXIT_SIGNAL_BASE"]

log = logging.getLogger(__name__)
EXIT_SIGNAL_BASE = 128  # shell convention: exit code 128 + signal number


class TrainingError(RuntimeError):
    """Training cannot continue (data, divergence, configuration)."""


@dataclass
class _RunStatus:
    stop: StopRequest = field(default_factory=StopRequest)   # SIGINT/SIGTERM received
    nonfinite_total: int = 0
    nonfinite_in_row: int = 0
    best_metric: tuple = (math.inf, math.inf)   # (dev WER, dev loss): lower is better
    history: list = field(default_factory=list)


class _Run:
    """Everything one training run holds: data, network, optimizer, step function, output files."""

    def __init__(self, cfg: Config):
        import mindspore

        from deepspeech2.training import distributed
        from deepspeech2.data.vocab import build_vocab
        from deepspeech2.model.build import build_network, init_device_for
        from deepspeech2.training.optimizer import build_optimizer
        from deepspeech2.core.device import use_graph_mode
        from deepspeech2.model.loss import CTCLoss
        from deepspeech2.training.step import make_train_step

        self.cfg = cfg
        missing = [key for key, value in (("data.train_manifest", cfg.data.train_manifest),
                                          ("train.output_dir", cfg.train.output_dir)) if not value]
        if missing:
            raise TrainingError(f"not set: {', '.join(missing)} (presets leave data paths and the output "
                                f"directory to the command line, e.g. {missing[0]}=...)")
        init_device_for(cfg)
        mindspore.set_seed(cfg.train.seed)                  # same initial weights on every run and rank
        self.rank, self.world, reducer_factory = distributed.init(cfg.train.is_distributed)
        if self.rank != 0:
            setup_logging(None, level=logging.WARNING)      # rank 0 logs; the others only warn
        self.out = Path(cfg.train.output_dir)
        self.ckpt_dir = self.out / ckpt_io.CHECKPOINT_DIR
        self.vocab = build_vocab(cfg)
        self.utts, self.dropped = load_utterances(cfg.data.train_manifest, self.vocab, cfg, True)
        schedule, epoch_of = training_schedule(self.utts, cfg, cfg.train.epochs, self.rank, self.world)
        self.steps_per_epoch = len(schedule) // cfg.train.epochs       # every epoch has this rank's share
        self.total_steps = len(schedule)
        if cfg.train.max_steps > 0:
            self.total_steps = min(self.total_steps, cfg.train.max_steps)
        self.source = BatchSource(self.utts, schedule, self.vocab, cfg, training=True, epoch_of=epoch_of)
        self.net = build_network(cfg, self.vocab, pretrained=cfg.train.pretrained)
        self.optimizer = build_optimizer(self.net, cfg)
        self.loss_fn = CTCLoss(self.vocab.blank, impl=cfg.model.ctc_impl)
        reducer = reducer_factory(self.optimizer.parameters) if reducer_factory else None
        self.graph = use_graph_mode(cfg.train.mode)
        self.step_fn, self.scaler = make_train_step(self.net, self.loss_fn, self.optimizer, cfg, reducer, self.graph)
        self.dev = None
        if cfg.data.val_manifest and cfg.train.eval_every_epoch:
            from deepspeech2.decoding.evaluator import Evaluator
            from deepspeech2.model.build import wrap_network
            self.dev = Evaluator(wrap_network(self.net, self.graph), self.vocab, cfg, cfg.data.val_manifest)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def meta(self, step: int, status: _RunStatus, metrics: dict) -> dict:
        return {"step": step, **epoch_fields(step, self.steps_per_epoch), "lr": lr_at(
            max(step - 1, 0), self.steps_per_epoch, self.cfg.optim), "metrics": metrics,
            "nonfinite_steps": status.nonfinite_total, "config": config_to_dict(self.cfg),
            "vocab": list(self.vocab.labels), "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}

    def save(self, name: str, step: int, status: _RunStatus, metrics: dict) -> Path | None:
        if not self.is_main:
            return None
        path = ckpt_io.save_training_checkpoint(self.ckpt_dir / f"{name}.ckpt", self.net, self.optimizer,
                                                self.scaler, self.meta(step, status, metrics))
        ckpt_io.prune_checkpoints(self.ckpt_dir, self.cfg.train.keep_last, protect=path)
        log.info("saved %s (step %d)", path, step)
        return path


def epoch_fields(steps_done: int, steps_per_epoch: int) -> dict:
    """The one meaning of "epoch" in records: epochs completed (int) and progress (float)."""
    return {"epoch": steps_done // steps_per_epoch, "epoch_progress": round(steps_done / steps_per_epoch, 4)}


def _write_metrics(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def trim_metrics(path: Path, step: int) -> int:
    """Drop the records after ``step`` (written after the checkpoint a run resumes from; the resumed
    run writes them again), so every step appears once. Returns the number of records dropped."""
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(kept))
    return len(lines) - len(kept)


def _end_of_epoch(run: _Run, step: int, status: _RunStatus, metrics_file: Path) -> None:
    """Dev loss/WER, epoch checkpoint, best-on-dev copy."""
    epoch = epoch_fields(step, run.steps_per_epoch)["epoch"]
    metrics: dict = {"epoch": epoch}
    if run.dev is not None:
        run.net.set_train(False)
        metrics.update(run.dev.run(desc=f"dev epoch {epoch}").summary())
        run.net.set_train(True)
        log.info("epoch %d dev: %s", epoch, {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})
    if run.source.augment is not None:
        done = range(step - run.steps_per_epoch, step)
        metrics["augmented"] = augment.count(choice for k in done for choice in run.source.choices(k))
        log.info("epoch %d augmentation: %s", epoch, metrics["augmented"])
    if run.is_main:
        _write_metrics(metrics_file, {"type": "epoch", "step": step, **epoch_fields(step, run.steps_per_epoch),
                                      **metrics})
    path = run.save(f"epoch_{epoch}", step, status, metrics)
    key = _dev_key(metrics)
    if path is not None and key < status.best_metric:
        status.best_metric = key
        ckpt_io.copy_checkpoint(path, run.ckpt_dir / "best.ckpt")
        log.info("new best on dev (WER %.4f, loss %.4f): %s", *key, run.ckpt_dir / "best.ckpt")


def _dev_key(metrics: dict) -> tuple:
    """Best-checkpoint order: dev WER, then dev loss (early epochs often tie at WER 1.0).
    Without a dev set every epoch counts as better, so best = latest."""
    if "wer" not in metrics and "loss" not in metrics:
        return (-math.inf, -metrics.get("epoch", 0))
    return (metrics.get("wer", math.inf), metrics.get("loss", math.inf))


def _resume(run: _Run, status: _RunStatus) -> int:
    """Restore the full training state; returns the step to continue from (0 for a fresh run)."""
    if not run.cfg.train.resume:
        return 0
    path = ckpt_io.find_resume_checkpoint(run.cfg.train.resume)
    meta = ckpt_io.restore_training_state(path, run.net, run.optimizer, run.scaler)
    saved_model = meta.get("config", {}).get("model")
    if saved_model and saved_model != config_to_dict(run.cfg)["model"]:
        raise TrainingError(f"{path}: model config differs from this run's; resume with the same config")
    status.nonfinite_total = int(meta.get("nonfinite_steps", 0))
    best = ckpt_io.read_sidecar(run.ckpt_dir / "best.ckpt")
    if best:
        status.best_metric = _dev_key(best.get("metrics", {}))
    log.info("resumed from %s at step %d", path, meta["step"])
    return int(meta["step"])


@dataclass
class _Throughput:
    """Audio and wall time since the last log line: the rate with data loading and Python between
    steps included, next to the compiled step's own rate; and the cores the run kept busy."""
    meter: CpuMeter = field(default_factory=CpuMeter)
    audio_s: float = 0.0
    since: float = field(default_factory=time.perf_counter)

    def interval(self) -> tuple[float, float]:
        """(audio-s per wall-s, busy cores) since the previous call; resets the interval."""
        now = time.perf_counter()
        rate = self.audio_s / max(now - self.since, 1e-9)
        self.audio_s, self.since = 0.0, now
        return rate, self.meter.cores_busy()


def _log_step(run: _Run, step: int, loss: float, norm: float, lr: float, audio_s: float,
              elapsed: float, t_start: float, start: int, metrics_file: Path, throughput: _Throughput) -> None:
    done = step + 1 - start
    eta = (time.time() - t_start) / done * (run.total_steps - step - 1)
    wall_rate, cores = throughput.interval()
    record = {"type": "step", "step": step + 1, **epoch_fields(step + 1, run.steps_per_epoch), "loss": loss,
              "lr": lr, "grad_norm": norm, "audio_s_per_s": audio_s / elapsed, "step_time": elapsed,
              "wall_audio_s_per_s": wall_rate, "cores_busy": cores, "loss_scale": loss_scale_value(run.scaler)}
    if run.is_main:
        _write_metrics(metrics_file, record)
    log.info("step %d/%d epoch %.2f loss %.4f lr %.3g grad-norm %.2f %.1f audio-s/s (%.1f with data loading, "
             "%.2f cores busy) ETA %s", step + 1, run.total_steps, record["epoch_progress"], loss, lr, norm,
             record["audio_s_per_s"], wall_rate, cores, time.strftime("%H:%M:%S", time.gmtime(eta)))


def _train_loop(run: _Run, status: _RunStatus, start: int) -> int:
    """Run steps ``start .. total_steps``; returns the step reached."""
    from mindspore import Tensor
    from tqdm import tqdm

    metrics_file = run.out / "metrics.jsonl"
    iterator = create_dataset(run.source, run.cfg.data, start).create_tuple_iterator(num_epochs=1)
    run.net.set_train(True)
    t_start, step = time.time(), start
    throughput = _Throughput()
    bar = tqdm(total=run.total_steps, initial=start, desc="train", disable=not run.is_main, unit="step")
    for step in range(start, run.total_steps):
        features, lengths, targets, target_lengths, indices = next(iterator)
        lr = lr_at(step, run.steps_per_epoch, run.cfg.optim)
        t0 = time.time()
        loss, norm, finite = run.step_fn(features, lengths, targets, target_lengths, Tensor(np.float32(lr)))
        loss, norm, finite = float(loss.asnumpy()), float(norm.asnumpy()), bool(finite.asnumpy())
        elapsed = time.time() - t0
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2g}")
        if not finite:
            status.nonfinite_total += 1
            status.nonfinite_in_row += 1
            log.warning("step %d: non-finite loss/gradient (loss %s), update skipped (%d in a row)",
                        step + 1, loss, status.nonfinite_in_row)
            if status.nonfinite_in_row >= run.cfg.train.max_nonfinite_in_row:
                raise TrainingError(
                    f"{status.nonfinite_in_row} non-finite steps in a row at step {step + 1}: the run diverged; "
                    f"lower optim.lr, enable gradient clipping, or check the data; last checkpoints are in {run.ckpt_dir}")
        else:
            status.nonfinite_in_row = 0
        audio_s = float(sum(run.utts[i].duration for i in indices.asnumpy()))
        throughput.audio_s += audio_s
        if (step + 1) % run.cfg.train.log_interval == 0 or step + 1 == run.total_steps:
            _log_step(run, step, loss, norm, lr, audio_s, elapsed, t_start, start, metrics_file, throughput)
        if (step + 1) % run.steps_per_epoch == 0:
            _end_of_epoch(run, step + 1, status, metrics_file)
            throughput.interval()               # the dev evaluation is not training throughput
        elif (step + 1) % run.cfg.train.save_interval_steps == 0:
            run.save(f"step_{step + 1}", step + 1, status, {})
        if status.stop.signum:
            run.save(f"step_{step + 1}", step + 1, status, {"interrupted": True})
            bar.close()
            return step + 1
    bar.close()
    return run.total_steps


def _write_weight_digest(run: _Run) -> None:
    """Each data-parallel rank writes a SHA-256 of its trainable weights: equal digests = ranks in
    sync. (BatchNorm moving statistics are rank-local: each rank normalises its own batches.)"""
    import hashlib

    digest = hashlib.sha256()
    for param in sorted(run.net.trainable_params(), key=lambda p: p.name):
        digest.update(param.name.encode())
        digest.update(param.asnumpy().tobytes())
    (run.out / f"weights_rank{run.rank}.sha256").write_text(digest.hexdigest() + "\n", encoding="utf-8")


def train(cfg: Config, stop: StopRequest | None = None) -> dict:
    """Train according to ``cfg``; returns a summary (steps, last loss, best dev metric, paths).
    ``stop`` receives SIGINT/SIGTERM (:func:`deepspeech2.core.signals.watch_stop_signals`); without
    it, plain Python handlers are installed (SIGINT is then reported as MindSpore relays it)."""
    out = Path(cfg.train.output_dir or ".")
    setup_logging(out / "train.log" if cfg.train.output_dir else None)
    run = _Run(cfg)
    if run.is_main:
        save_config(cfg, run.out / "config.yaml")
        log.info("essential configuration: %s", json.dumps(config_to_dict(cfg)["train"]))
        log.info("%d utterances, %d steps/epoch, %d total steps, batch %d, rank %d/%d",
                 len(run.utts), run.steps_per_epoch, run.total_steps, cfg.data.batch_size, run.rank, run.world)
    status = _RunStatus(stop=stop or StopRequest())
    if run.is_main:
        for stale in ckpt_io.remove_partial_files(run.ckpt_dir):
            log.warning("removed %s (left by an interrupted or failed checkpoint save)", stale)
    start = _resume(run, status)
    if run.is_main and cfg.train.resume:
        dropped = trim_metrics(run.out / "metrics.jsonl", start)
        if dropped:
            log.info("metrics.jsonl: dropped %d records after step %d (they are written again)", dropped, start)
    if stop is None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, status.stop.handle)
    t0 = time.time()
    reached = _train_loop(run, status, start) if start < run.total_steps else start
    if reached == run.total_steps and reached % run.steps_per_epoch != 0 and reached > start:
        run.save(f"step_{reached}", reached, status, {"final": True})
    if run.world > 1:
        _write_weight_digest(run)
    summary = {"steps": reached, "total_steps": run.total_steps, "wall_time_s": time.time() - t0,
               "nonfinite_steps": status.nonfinite_total, "best_dev_wer_loss": list(status.best_metric),
               "checkpoint_dir": str(run.ckpt_dir), "interrupted_by_signal": status.stop.signum}
    log.info("training finished: %s", summary)
    return summary
