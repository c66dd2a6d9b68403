"""DeepSpeech2 for MindSpore, in layers that import only downward:
core → data → model → decoding → training → inference → lab → cli.

The flat module paths of releases before this layout still import (with a DeprecationWarning), so that
scripts written against them keep working — the shared side-by-side benchmark (``project_step.py``)
among them: each names the modules whose public names it now gathers.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

LEGACY_MODULES = {
    "deepspeech2.build": ("deepspeech2.model.build", "deepspeech2.training.optimizer", "deepspeech2.data.vocab"),
    "deepspeech2.config": ("deepspeech2.core.config",),
    "deepspeech2.device": ("deepspeech2.core.device",),
    "deepspeech2.loss": ("deepspeech2.model.loss",),
    "deepspeech2.train_step": ("deepspeech2.training.step",),
}


class _LegacyModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook: a pre-layout module path becomes a module holding the public names of its successors."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in LEGACY_MODULES else None

    def create_module(self, spec):
        return None   # the default module object

    def exec_module(self, module) -> None:
        successors = LEGACY_MODULES[module.__name__]
        warnings.warn(f"{module.__name__} is deprecated: import from {' / '.join(successors)}",
                      DeprecationWarning, stacklevel=2)
        for name in successors:
            successor = importlib.import_module(name)
            public = getattr(successor, "__all__", None) or [n for n in vars(successor) if not n.startswith("_")]
            module.__dict__.update({n: getattr(successor, n) for n in public})


if not any(isinstance(finder, _LegacyModules) for finder in sys.meta_path):
    sys.meta_path.append(_LegacyModules())   # last: real modules are always found first
