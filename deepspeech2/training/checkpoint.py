"""Training-run checkpoints: atomic save with a sidecar YAML, exact resume, pruning, best copy,
and the model/feature config a checkpoint was trained with (read from its sidecar)."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from deepspeech2.core.config import Config, config_from_dict
from deepspeech2.core.files import atomic_copy, atomic_path, atomic_write_text, is_partial
from deepspeech2.model.weights import CheckpointError, read_checkpoint

__all__ = ["CHECKPOINT_DIR", "save_training_checkpoint", "read_sidecar", "config_for_checkpoint",
           "find_resume_checkpoint", "restore_training_state", "prune_checkpoints", "copy_checkpoint",
           "remove_partial_files", "epoch_checkpoints", "average_checkpoints"]

log = logging.getLogger(__name__)
OPTIMIZER_PREFIX = "optimizer."
LOSS_SCALE_NAME = "loss_scaler.scale_value"
CHECKPOINT_DIR = "checkpoints"


def save_training_checkpoint(path: str | Path, net, optimizer, scaler, meta: dict) -> Path:
    """Write weights (the network's own names), optimizer state (``optimizer.*``) and the loss
    scale to ``path`` atomically, then the sidecar ``<stem>.yaml`` with ``meta`` (config, epoch,
    step, metrics). A crash leaves either the previous files or complete new ones."""
    import mindspore
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = [{"name": p.name, "data": p} for p in net.get_parameters()]
    net_names = {e["name"] for e in entries}
    for name, param in optimizer.parameters_and_names():
        if name not in net_names and param.name not in net_names:
            entries.append({"name": OPTIMIZER_PREFIX + name, "data": param})
    entries.append({"name": LOSS_SCALE_NAME, "data": scaler.scale_value})
    with atomic_path(path, suffix=".ckpt") as tmp:
        mindspore.save_checkpoint(entries, str(tmp))
    atomic_write_text(path.with_suffix(".yaml"), yaml.safe_dump(meta, sort_keys=False))
    return path


def read_sidecar(ckpt: str | Path) -> dict | None:
    """The sidecar YAML of a checkpoint, or None if it has none (e.g. a zoo checkpoint)."""
    import yaml

    side = Path(ckpt).with_suffix(".yaml")
    if not side.is_file():
        return None
    with open(side, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def config_for_checkpoint(cfg: Config, ckpt: str | Path) -> Config:
    """``cfg`` with the model, features and labels a checkpoint was trained with (from its sidecar
    YAML). A checkpoint without a sidecar (e.g. the zoo's DeepSpeech.ckpt) keeps ``cfg``'s — by
    default the zoo architecture."""
    meta = read_sidecar(ckpt)
    if not meta or "config" not in meta:
        log.info("%s has no sidecar config: building the model from the given config (%s rnn %dx%d)",
                 ckpt, cfg.model.rnn_type, cfg.model.num_layers, cfg.model.hidden_size)
        return cfg
    saved = config_from_dict(meta["config"])
    return replace(cfg, model=saved.model, features=saved.features,
                   data=replace(cfg.data, labels=saved.data.labels))


def _run_checkpoint_folder(target: Path) -> Path:
    """A run directory's checkpoint folder, or ``target`` itself when it is that folder."""
    return target / CHECKPOINT_DIR if (target / CHECKPOINT_DIR).is_dir() else target


def _training_checkpoints(folder: Path, pattern: str = "*.ckpt") -> list[tuple[int, float, Path]]:
    """``(step, mtime, path)`` of the complete step/epoch checkpoints in ``folder`` matching
    ``pattern``, oldest first. A sidecar with a ``step`` marks one; best.* is skipped by name, and an
    averaged model's sidecar has ``last_step`` instead, so neither is ever resumed from or pruned."""
    found = []
    for ckpt in folder.glob(pattern):
        if is_partial(ckpt) or ckpt.stem == "best":
            continue
        meta = read_sidecar(ckpt)
        if meta and "step" in meta:
            found.append((int(meta["step"]), ckpt.stat().st_mtime, ckpt))
    return sorted(found)


def find_resume_checkpoint(target: str | Path) -> Path:
    """``target`` is a checkpoint file or a run directory; a directory resolves to its newest
    complete checkpoint (highest step among files that have a sidecar)."""
    target = Path(target)
    if target.is_file():
        return target
    candidates = _training_checkpoints(_run_checkpoint_folder(target))
    if not candidates:
        raise CheckpointError(f"{target}: no checkpoint with a sidecar .yaml to resume from")
    return candidates[-1][2]


def restore_training_state(path: str | Path, net, optimizer, scaler) -> dict:
    """Load weights, BatchNorm statistics, optimizer moments/step and loss scale; returns the
    sidecar metadata. Every network and optimizer parameter must be present (exact resume)."""
    import mindspore

    path = Path(path)
    meta = read_sidecar(path)
    if meta is None:
        raise CheckpointError(f"{path}: no sidecar {path.with_suffix('.yaml').name}; "
                              "to start from these weights use --pre_trained_model_path instead")
    params = read_checkpoint(path)
    net_params = {k: v for k, v in params.items() if not k.startswith(OPTIMIZER_PREFIX) and k != LOSS_SCALE_NAME}
    opt_params = {k[len(OPTIMIZER_PREFIX):]: v for k, v in params.items() if k.startswith(OPTIMIZER_PREFIX)}
    missing, _ = mindspore.load_param_into_net(net, net_params, strict_load=True)
    if missing:
        raise CheckpointError(f"{path}: cannot resume, missing network parameters {missing[:5]}")
    opt_names = dict(optimizer.parameters_and_names())
    net_names = {p.name for p in net.get_parameters()}
    for name, param in opt_names.items():
        if name in net_names or param.name in net_names:
            continue
        if name not in opt_params:
            raise CheckpointError(f"{path}: cannot resume, missing optimizer state {name!r}")
        param.set_data(opt_params[name].astype(param.dtype))
    if LOSS_SCALE_NAME in params:
        scaler.scale_value.set_data(params[LOSS_SCALE_NAME].astype(scaler.scale_value.dtype))
    return meta


def prune_checkpoints(folder: str | Path, keep_last: int, protect: str | Path | None = None) -> None:
    """Delete all but the ``keep_last`` newest step/epoch checkpoints (and their sidecars). best.* and
    ``protect`` (the checkpoint just written, newest or not: a run resumed from an older one) stay."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1 (got {keep_last}): pruning would delete the checkpoint just written")
    protected = Path(protect).resolve() if protect else None
    ckpts = [entry for entry in _training_checkpoints(Path(folder)) if entry[2].resolve() != protected]
    keep_last -= protected is not None
    for _, _, ckpt in ckpts[:max(0, len(ckpts) - keep_last)]:
        ckpt.unlink(missing_ok=True)
        ckpt.with_suffix(".yaml").unlink(missing_ok=True)


def remove_partial_files(folder: str | Path) -> list[Path]:
    """Delete the temporaries of saves that did not finish (ours and MindSpore's ``.partial.tmp``,
    e.g. after a full disk or a kill); returns what was removed. Only for a folder no one writes to."""
    removed = [path for path in sorted(Path(folder).glob("*")) if path.is_file() and is_partial(path)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def copy_checkpoint(src: str | Path, dst: str | Path) -> None:
    """Atomically copy a checkpoint and its sidecar (used for best.ckpt)."""
    src, dst = Path(src), Path(dst)
    atomic_copy(src, dst)
    atomic_write_text(dst.with_suffix(".yaml"), src.with_suffix(".yaml").read_text(encoding="utf-8"))


def epoch_checkpoints(folder: str | Path) -> list[Path]:
    """The complete ``epoch_N.ckpt`` files of a run's checkpoint folder (or of the run directory),
    oldest first by training step."""
    return [ckpt for _, _, ckpt in _training_checkpoints(_run_checkpoint_folder(Path(folder)), "epoch_*.ckpt")]


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """Write the element-wise mean of the network weights (BatchNorm statistics included) of
    ``paths`` to ``out``, with the newest input's sidecar plus ``averaged_from``; optimizer state is
    left out (an averaged model is for evaluation and export, or as --pre_trained_model_path)."""
    import mindspore
    import numpy as np
    import yaml

    if not paths:
        raise ValueError("no checkpoints to average")
    paths = [Path(p) for p in paths]
    total: dict[str, np.ndarray] = {}
    dtypes: dict = {}
    for path in paths:
        params = {k: v for k, v in read_checkpoint(path).items()
                  if not k.startswith(OPTIMIZER_PREFIX) and k != LOSS_SCALE_NAME}
        if total and set(params) != set(total):
            differ = sorted(set(params) ^ set(total))[:5]
            raise CheckpointError(f"{path}: other parameters than {paths[0]} (e.g. {differ}): "
                                  "only checkpoints of one network can be averaged")
        for name, value in params.items():
            array = value.asnumpy().astype(np.float64)
            if name in total and array.shape != total[name].shape:
                raise CheckpointError(f"{path}: {name} has shape {array.shape}, {paths[0]} has {total[name].shape}")
            total[name] = total.get(name, 0.0) + array
            dtypes[name] = value.dtype
    entries = [{"name": name, "data": mindspore.Tensor((value / len(paths)).astype(np.float32)).astype(dtypes[name])}
               for name, value in total.items()]
    out = Path(out)
    with atomic_path(out, suffix=".ckpt") as tmp:
        mindspore.save_checkpoint(entries, str(tmp))
    meta = dict(read_sidecar(paths[-1]) or {})
    meta["averaged_from"] = [str(p) for p in paths]
    meta["last_step"] = meta.pop("step", None)   # no "step": never taken for a resumable training checkpoint
    atomic_write_text(out.with_suffix(".yaml"), yaml.safe_dump(meta, sort_keys=False))
    return out
