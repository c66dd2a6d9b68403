"""The package's layers import only downward, and the data layer never loads MindSpore."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepspeech2"
LAYERS = ["core", "data", "model", "decoding", "training", "inference", "serving", "lab", "cli"]


def _imported_layers(path: Path) -> set[str]:
    """Subpackages of deepspeech2 that ``path`` imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "deepspeech2" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


def test_every_module_sits_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()) == sorted(LAYERS)


def test_no_module_imports_a_higher_layer():
    upward = []
    for layer in LAYERS:
        for path in (PACKAGE / layer).glob("*.py"):
            for other in _imported_layers(path):
                if LAYERS.index(other) > LAYERS.index(layer):
                    upward.append(f"{layer}/{path.name} imports {other}")
    assert upward == []


def test_data_layer_does_not_load_mindspore():
    code = ("import sys; import deepspeech2.data.dataset, deepspeech2.data.shapes, deepspeech2.data.manifest; "
            "print('mindspore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_pre_layout_module_paths_still_import_with_a_warning():
    """Scripts written against the flat layout (the shared side-by-side benchmark's project_step.py) keep working."""
    import importlib

    import pytest

    from deepspeech2 import LEGACY_MODULES
    from deepspeech2.model.build import build_network
    from deepspeech2.training.optimizer import build_optimizer
    from deepspeech2.training.step import make_train_step

    for name in LEGACY_MODULES:
        sys.modules.pop(name, None)
        with pytest.warns(DeprecationWarning, match=name.replace(".", r"\.") + " is deprecated"):
            importlib.import_module(name)
    legacy_build = sys.modules["deepspeech2.build"]
    assert legacy_build.build_network is build_network and legacy_build.build_optimizer is build_optimizer
    assert sys.modules["deepspeech2.train_step"].make_train_step is make_train_step
    assert {n.split(".")[1] for n in LEGACY_MODULES}.isdisjoint(LAYERS)   # never shadows a real layer
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("deepspeech2.no_such_module")
