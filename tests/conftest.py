"""Shared fixtures, each built once per test session: the committed speech clips, a tiny synthetic
LibriSpeech corpus (prepared) and a tiny randomly initialised checkpoint; and the compiled training-step runner
that compares network implementations."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# One oneDNN ISA for the whole test process (and its subprocesses): models with oneDNN convolutions
# and MatMul-conv models run side by side here; oneDNN fixes the ISA at its first use, so a process
# that started uncapped would run the former with reference conv kernels (see deepspeech2.core.device).
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_SPLITS = {"train-clean-100": 0.02, "dev-clean": 0.006, "test-clean": 0.006}
SPEECH_DIR = REPO_ROOT / "tests" / "data" / "speech"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def speech_clips() -> dict[str, tuple[Path, str]]:
    """The committed 16 kHz mono 16-bit espeak-ng clips (tests/data/speech): name -> (flac, transcript)."""
    lines = (SPEECH_DIR / "transcripts.txt").read_text(encoding="utf-8").splitlines()
    return {name: (SPEECH_DIR / f"{name}.flac", text) for name, text in (line.split(" ", 1) for line in lines)}


@pytest.fixture(scope="session")
def prepared_corpus(tmp_path_factory) -> Path:
    """Synthesised (espeak-ng/flite) LibriSpeech tarballs → ds2-prepare-librispeech output dir."""
    if not (shutil.which("espeak-ng") and shutil.which("flite")):
        pytest.skip("espeak-ng/flite not installed (bash scripts/run_tests.sh installs them)")
    from data_prep.corpus.make_corpus import make_corpus
    from data_prep.librispeech import prepare_librispeech

    root = tmp_path_factory.mktemp("corpus")
    make_corpus(root / "tarballs", TINY_SPLITS, seed=0, jobs=2)
    prepare_librispeech(root / "prepared", root / "tarballs", min_duration=0.0, max_duration=0.0, num_workers=2)
    return root / "prepared"


def _tiny_config(prepared_corpus: Path, out_dir: Path):
    """A config with a very small model on the tiny corpus, writing into ``out_dir``."""
    from deepspeech2.core.config import load_config

    return load_config(None, [
        f"data.train_manifest={prepared_corpus / 'libri_train_manifest.json'}",
        f"data.val_manifest={prepared_corpus / 'libri_val_manifest.json'}",
        f"data.test_manifest={prepared_corpus / 'libri_test_clean_manifest.csv'}",
        "data.batch_size=2", "data.eval_batch_size=3", "data.num_workers=1", "data.bucket_frames=50",
        "model.conv_channels=4", "model.hidden_size=32", "model.num_layers=2",
        "optim.lr=2e-3", "optim.warmup_steps=0", "train.cpu_threads=2", "train.log_interval=1",
        f"train.output_dir={out_dir / 'run'}", "train.epochs=1"])


@pytest.fixture()
def tiny_config(prepared_corpus, tmp_path):
    """A config with a very small model on the tiny corpus, writing into tmp_path."""
    return _tiny_config(prepared_corpus, tmp_path)


def _save_tiny_checkpoint(prepared_corpus: Path, out_dir: Path, name: str, overrides=()):
    """A randomly initialised ``tiny_config`` network (with ``overrides``) saved as a training checkpoint."""
    import dataclasses

    from deepspeech2.core.config import apply_overrides
    from deepspeech2.core.device import init_device
    from deepspeech2.data.vocab import build_vocab
    from deepspeech2.model.amp import make_loss_scaler
    from deepspeech2.model.build import build_network
    from deepspeech2.training.checkpoint import save_training_checkpoint
    from deepspeech2.training.optimizer import build_optimizer

    cfg = apply_overrides(_tiny_config(prepared_corpus, out_dir), list(overrides))
    init_device("CPU", 0, cfg.train.cpu_threads)
    net = build_network(cfg, build_vocab(cfg))
    meta = {"step": 0, "epoch": 0, "metrics": {}, "config": dataclasses.asdict(cfg)}
    return save_training_checkpoint(out_dir / "ckpt" / f"{name}.ckpt", net, build_optimizer(net, cfg),
                                    make_loss_scaler(cfg.train), meta)


@pytest.fixture(scope="session")
def tiny_checkpoint(prepared_corpus, tmp_path_factory):
    """A randomly initialised tiny network saved once per session as a training checkpoint with its
    sidecar YAML (same model settings as ``tiny_config``). Tests must not modify it."""
    return _save_tiny_checkpoint(prepared_corpus, tmp_path_factory.mktemp("tiny_checkpoint"), "tiny")


@pytest.fixture
def tiny_checkpoint_with(prepared_corpus, tmp_path):
    """``tiny_checkpoint_with(*overrides)``: a fresh tiny checkpoint (and its config) with config overrides."""
    from deepspeech2.core.config import apply_overrides

    def make(*overrides):
        return (_save_tiny_checkpoint(prepared_corpus, tmp_path, "overridden", overrides),
                apply_overrides(_tiny_config(prepared_corpus, tmp_path), list(overrides)))
    return make


STREAM_MODEL_OVERRIDES = ("model.bidirectional=false", "model.lookahead_context=3", "features.normalize=false")


@pytest.fixture(scope="session")
def tiny_stream_checkpoint(prepared_corpus, tmp_path_factory):
    """Like ``tiny_checkpoint`` but unidirectional with a lookahead and unnormalised features (streamable)."""
    return _save_tiny_checkpoint(prepared_corpus, tmp_path_factory.mktemp("tiny_stream_checkpoint"),
                                 "tiny_stream", STREAM_MODEL_OVERRIDES)


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs mounted at ``tmp_path/disk`` (root only); yields a function that resizes it (bytes)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()

    def resize(size: int, option: str = "remount,") -> None:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"{option}size={size}", "tmpfs", str(mount_point)],
                       check=True, capture_output=True)

    try:
        resize(1 << 20, option="")
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {err}")
    try:
        yield mount_point, resize
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def _compiled_steps(net, batches, n_freq: int, seed: int = 1):
    """CTC loss and parameter gradients of ``net`` for random batches of the given utterance lengths, from one
    GRAPH step compiled with unknown batch and time (as the training step is); and the BatchNorm moving
    statistics after the last batch. Returns ``([(loss, {param: grad})], {moving statistic: value})``."""
    import mindspore
    import numpy as np
    from mindspore import Tensor

    from deepspeech2.model.loss import CTCLoss

    loss_fn, params = CTCLoss(0), net.trainable_params()

    def loss(inputs, lens, targets, target_lengths):
        log_probs, out_lengths = net(inputs, lens)
        return loss_fn(log_probs, targets, out_lengths, target_lengths)

    net.set_train(True)
    grad_fn = mindspore.value_and_grad(loss, None, params)

    def step(inputs, lens, targets, target_lengths):
        return grad_fn(inputs, lens, targets, target_lengths)

    step = mindspore.jit(mindspore.enable_dynamic(
        inputs=Tensor(shape=[None, 1, n_freq, None], dtype=mindspore.float32),
        lens=Tensor(shape=[None], dtype=mindspore.int32), targets=Tensor(shape=[None, None], dtype=mindspore.int32),
        target_lengths=Tensor(shape=[None], dtype=mindspore.int32))(step))
    rng = np.random.default_rng(seed)
    results = []
    for lengths in batches:
        x = Tensor(rng.standard_normal((len(lengths), 1, n_freq, max(lengths))).astype(np.float32))
        targets = Tensor(rng.integers(1, 29, (len(lengths), 4)).astype(np.int32))
        value, grads = step(x, Tensor(np.array(lengths, np.int32)), targets, Tensor(np.full(len(lengths), 4, np.int32)))
        results.append((float(value.asnumpy()), {p.name: g.asnumpy() for p, g in zip(params, grads)}))
    moving = {name: p.asnumpy() for name, p in net.parameters_and_names() if "moving" in name}
    return results, moving


@pytest.fixture(scope="session")
def compiled_steps():
    """:func:`_compiled_steps`: run a network's compiled training step on random batches."""
    return _compiled_steps
