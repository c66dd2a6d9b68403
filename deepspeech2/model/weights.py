"""Loading network weights from a checkpoint (ours or the model zoo's).

Loading: wrapper prefixes (``network.``, ``network.network.``, ``net.``, ...) are stripped per entry,
leading dotted components first, until the name is one of the network's. Optimizer state and
training metadata are skipped. Anything else that does not fit is an error unless
``allow_partial`` (then the matching tensors load and the rest is logged).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import mindspore
from mindspore import Tensor, nn

__all__ = ["CheckpointError", "LoadReport", "NON_MODEL_KEYS", "read_checkpoint", "load_weights"]

log = logging.getLogger(__name__)

# A checkpoint entry with any of these dotted components is optimizer state or training metadata.
NON_MODEL_KEYS = frozenset({
    "optimizer", "moment1", "moment2", "moments", "accum", "adam_m", "adam_v", "velocity",
    "global_step", "learning_rate", "beta1_power", "beta2_power", "scale_sense", "loss_scale", "loss_scaler",
    "current_iterator_step", "last_overflow_iterator_step", "epoch_num", "step_num",
})
_SHOWN = 5  # problems named per category in an error message


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not fit the network."""


@dataclass
class LoadReport:
    """What :func:`load_weights` did; names are the network's (``missing``, ``loaded``,
    ``shape_mismatched``) or the file's (``unexpected``, ``ignored``)."""
    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)            # network parameters not in the file
    unexpected: list[str] = field(default_factory=list)         # file tensors matching no parameter
    shape_mismatched: list[str] = field(default_factory=list)   # same name, different shape
    ignored: list[str] = field(default_factory=list)            # optimizer state / metadata
    stripped_prefixes: list[str] = field(default_factory=list)  # e.g. ["network.network."]
    details: dict[str, str] = field(default_factory=dict)       # name → "file (a, b) vs net (c, d)"

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatched)

    def problems(self, limit: int = _SHOWN) -> str:
        """One-line summary of the first ``limit`` problems per category."""
        parts = []
        for label, names in (("missing", self.missing), ("unexpected", self.unexpected),
                             ("shape mismatch", self.shape_mismatched)):
            if names:
                shown = [f"{n} [{self.details[n]}]" if n in self.details else n for n in names[:limit]]
                more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                parts.append(f"{len(names)} {label}: {', '.join(shown)}{more}")
        return "; ".join(parts) or "none"

    def __str__(self) -> str:
        prefixes = f", stripped {self.stripped_prefixes}" if self.stripped_prefixes else ""
        return (f"{len(self.loaded)} tensors loaded, {len(self.ignored)} optimizer/metadata entries "
                f"skipped{prefixes}; problems: {self.problems()}")


def read_checkpoint(path: str | Path) -> dict:
    """``name → Parameter`` (or plain values for string metadata) of a MindSpore checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file does not exist")
    try:
        return mindspore.load_checkpoint(str(path))
    except Exception as err:  # MindSpore raises ValueError/RuntimeError for corrupt files
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint (truncated or another "
                              f"format?): {str(err).splitlines()[0]}") from err


def _match(name: str, net_names: set[str]) -> tuple[str, str] | None:
    """``(prefix, net_name)`` when dropping leading components of ``name`` gives a network name."""
    parts = name.split(".")
    for k in range(len(parts)):
        candidate = ".".join(parts[k:])
        if candidate in net_names:
            return ".".join(parts[:k]) + ("." if k else ""), candidate
    return None


def _plan(entries: dict, params: dict, report: LoadReport) -> dict[str, object]:
    """Map file entries to network parameters; fills the report's name lists."""
    chosen: dict[str, tuple[str, object]] = {}
    prefixes: set[str] = set()
    for name, value in entries.items():
        if not hasattr(value, "shape") or NON_MODEL_KEYS.intersection(name.split(".")):
            report.ignored.append(name)
            continue
        hit = _match(name, set(params))
        if hit is None:
            report.unexpected.append(name)
            continue
        prefix, target = hit
        if target in chosen:  # e.g. both "x" and "network.x": ambiguous, refuse to guess
            report.unexpected.append(name)
            report.details[name] = f"also matches {target}, already taken by {chosen[target][0]}"
            continue
        chosen[target] = (name, value)
        if prefix:
            prefixes.add(prefix)
    report.stripped_prefixes = sorted(prefixes)
    matched = {}
    for target, param in params.items():
        if target not in chosen:
            report.missing.append(target)
            continue
        source, value = chosen[target]
        if tuple(value.shape) != tuple(param.shape):
            report.shape_mismatched.append(target)
            report.details[target] = f"file {source} {tuple(value.shape)} vs net {tuple(param.shape)}"
            continue
        matched[target] = value
    return matched


def load_weights(net: nn.Cell, path: str | Path, allow_partial: bool = False) -> LoadReport:
    """Copy a checkpoint's tensors into ``net`` (parameters and BatchNorm statistics).

    Raises CheckpointError naming the file and the first problems when the file is unreadable,
    or, unless ``allow_partial``, when any parameter is missing, any model tensor is unexpected,
    or any shape differs. With ``allow_partial`` the matching tensors load and the rest is logged.
    Nothing is copied when an error is raised.
    """
    report = LoadReport(str(path))
    entries = read_checkpoint(path)
    params = net.parameters_dict()
    matched = _plan(entries, params, report)
    if not matched:
        raise CheckpointError(f"{path}: no tensor matches the network's parameters; {report.problems()}")
    if not report.complete:
        if not allow_partial:
            raise CheckpointError(f"{path} does not fit the network: {report.problems()}. "
                                  "Use allow_partial (train.allow_partial_load=true) to load only the "
                                  "matching tensors.")
        log.warning("%s: partial load: %s", path, report.problems(limit=len(params)))
    for target, value in matched.items():
        param = params[target]
        data = value.asnumpy() if isinstance(value, Tensor) else np.asarray(value)
        param.set_data(Tensor(data.astype(mindspore.dtype_to_nptype(param.dtype), copy=False)))
        report.loaded.append(target)
    log.info("%s: %s", path, report)
    return report
