"""This package's own CPU kernels (``kernels/*.cc``) as MindSpore ``Custom`` aot ops: the build, its cache
and the op wrapper that the LSTM (:mod:`deepspeech2.model.lstm_kernel`), the convolution
(:mod:`deepspeech2.model.conv`), the BatchNorm (:mod:`deepspeech2.model.batch_norm`) and the CTC loss
(:mod:`deepspeech2.model.loss`) share.

A kernel is compiled with g++ on first use into a cache directory (``DS2_KERNEL_CACHE``, default
``~/.cache/deepspeech2/kernels``), once per source (with the headers beside it), compile-time constants, flags,
CPU and MindSpore installation; it links against the oneDNN library MindSpore ships (its sgemm). The build records the
library's sha256, and a cached library that differs (truncated by a full disk, which would crash the
process that loads it) is built again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import mindspore
from mindspore import ops
from mindspore.ops import CustomRegOp, DataType

from deepspeech2.core.device import cpu_flags
from deepspeech2.core.files import atomic_write_text

__all__ = ["KERNEL_DIR", "build_library", "custom_op", "resolve_kernel_impl"]

log = logging.getLogger(__name__)

KERNEL_DIR = Path(__file__).with_name("kernels")
ONEDNN_LIBRARY = "libdnnl.so.3"      # shipped in mindspore/lib
COMPILE_FLAGS = ("-O3", "-march=native", "-ffast-math", "-std=c++17", "-shared", "-fPIC", "-D_GLIBCXX_USE_CXX11_ABI=0",
                 "-pthread")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(library: Path) -> bool:
    """Whether ``library`` is the file its build recorded."""
    record = library.with_suffix(".sha256")
    try:
        return record.read_text().strip() == _digest(library)
    except OSError:
        return False


def _cache_dir() -> Path:
    return Path(os.environ.get("DS2_KERNEL_CACHE") or Path.home() / ".cache" / "deepspeech2" / "kernels")


def build_library(source: Path, defines: Sequence[tuple[str, int]] = (), *, user: str, fallback: str) -> Path:
    """Path of ``source`` compiled with ``-D name=value`` for each of ``defines``, built on first use
    (concurrent processes wait for one build). RuntimeError with what to do when it cannot be built;
    ``user`` names the setting that asked for the kernel and ``fallback`` the one that needs none."""
    ms_lib = Path(mindspore.__file__).parent / "lib"
    compiler = shutil.which("g++")
    if compiler is None:
        raise RuntimeError(f"{user} compiles a C++ kernel and needs g++ (Debian/Ubuntu: apt-get install g++); "
                           f"or use {fallback}")
    if not (ms_lib / ONEDNN_LIBRARY).exists():
        raise RuntimeError(f"{user} links against MindSpore's {ONEDNN_LIBRARY}, which is not in {ms_lib}; "
                           f"use {fallback}")
    flags = [*COMPILE_FLAGS, *(f"-D{name}={value}" for name, value in defines)]
    this_cpu = " ".join(sorted(cpu_flags())) or platform.processor()      # the build is -march=native
    headers = [header.read_bytes() for header in sorted(source.parent.glob("*.h"))]   # kernel_threads.h, ...
    key = hashlib.sha256(b"\0".join([source.read_bytes(), *headers, " ".join(flags).encode(), str(ms_lib).encode(),
                                     this_cpu.encode()])).hexdigest()[:16]
    cache = _cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RuntimeError(f"{user} builds its kernel in {cache}, which cannot be created ({err}); "
                           "set DS2_KERNEL_CACHE to a writable directory") from err
    target = cache / f"{source.stem}-{key}.so"
    import fcntl   # POSIX only, like the g++ build itself

    with open(cache / f"{source.stem}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and not _intact(target):
            log.warning("the cached kernel %s is not the file its build recorded (truncated, or from an "
                        "older version); building it again", target)
            target.unlink()
        if not target.exists():
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                built = Path(tmp) / target.name
                cmd = [compiler, *flags, "-o", str(built), str(source), f"-L{ms_lib}", f"-l:{ONEDNN_LIBRARY}",
                       f"-Wl,-rpath,{ms_lib}"]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"building the kernel {source.name} failed ({' '.join(cmd)}):\n"
                                       f"{done.stderr.strip()}")
                digest = _digest(built)
                os.replace(built, target)
                atomic_write_text(target.with_suffix(".sha256"), digest + "\n")
    return target


def custom_op(library: Path, name: str, inputs: Sequence[str], bprop: Callable | None = None) -> ops.Custom:
    """Function ``name`` of ``library`` as a Custom aot op with one float32 output; its shape comes from the
    library's C++ infer function ``<name>InferShape`` (so dynamic batch and time work in GRAPH mode)."""
    reg = CustomRegOp(f"ds2_{name}")
    for i, input_name in enumerate(inputs):
        reg = reg.input(i, input_name)
    info = (reg.output(0, "out").dtype_format(*[DataType.None_None] * (len(inputs) + 1))
            .target("CPU").get_op_info())
    return ops.Custom(f"{library}:{name}", out_shape=None, out_dtype=mindspore.float32, func_type="aot",
                      bprop=bprop, reg_info=info)


def resolve_kernel_impl(setting: str, requested: str, valid: Sequence[str], device: str, build: Callable[[], object],
                        fallback: str) -> str:
    """``custom`` or ``fallback`` for a setting (e.g. ``model.bn_impl``) whose values are ``auto``, ``fallback`` and
    ``custom``: ``auto`` = ``custom`` on CPU when ``build()`` (the kernel's library) succeeds, else ``fallback``
    (logged); ``fallback`` off CPU, where ``custom`` also means ``fallback``. ValueError for other values."""
    if requested not in valid:
        raise ValueError(f"unknown {setting} {requested!r}; valid: {tuple(valid)}")
    if device != "CPU" or requested == fallback:
        return fallback
    if requested == "custom":
        return "custom"
    try:
        build()
    except RuntimeError as err:
        log.warning("%s=auto: %s instead of our kernel (%s)", setting, fallback, err)
        return fallback
    return "custom"
