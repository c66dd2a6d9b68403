"""One flag, three targets: ``--device_target CPU|GPU|Ascend`` → MindSpore device and execution settings."""
from __future__ import annotations

import logging
import os
import time

from deepspeech2.core.config import DeviceTarget, ExecMode, choices

__all__ = ["DEVICE_TARGETS", "init_device", "use_graph_mode", "cap_onednn_isa", "cpu_flags", "has_avx512", "cpu_isa", "cpu_model", "CpuMeter"]

log = logging.getLogger(__name__)
DEVICE_TARGETS = choices(DeviceTarget)
_MODES = choices(ExecMode)
_initialised: tuple | None = None


def use_graph_mode(mode: str) -> bool:
    """True for GRAPH execution of the train/eval steps (``mindspore.jit``), False for PYNATIVE."""
    if mode not in _MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {_MODES}")
    return mode == "graph"


ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
# read by this package's own CPU kernels (deepspeech2/model/kernels): at most this many threads each
KERNEL_THREADS_VARIABLE = "DS2_CPU_THREADS"
ONEDNN_ISA_CAP = "AVX2"


CPUINFO = "/proc/cpuinfo"


def _cpuinfo_field(name: str) -> str | None:
    """The first ``name : value`` line's value in /proc/cpuinfo, or None (no such file or field)."""
    try:
        with open(CPUINFO, encoding="utf-8") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (/proc/cpuinfo: ``flags`` on x86, ``Features`` on ARM), empty when unknown."""
    return set((_cpuinfo_field("flags") or _cpuinfo_field("Features") or "").split())


AVX512_FLAG = "avx512f"
# (flag in /proc/cpuinfo, name): the widest vector / matrix units, which set this CPU's GEMM and conv speed
ISA_FEATURES = ((AVX512_FLAG, "AVX-512"), ("avx512_bf16", "AVX512-BF16"), ("amx_tile", "AMX"))
ISA_FALLBACK = (("avx2", "AVX2"),)


def has_avx512() -> bool:
    """True when the CPU advertises AVX-512F (/proc/cpuinfo)."""
    return AVX512_FLAG in cpu_flags()


def cpu_isa() -> str:
    """The vector extensions that matter for speed here, e.g. ``"AVX-512, AMX"`` or ``"AVX2"``
    (``""`` when /proc/cpuinfo lists none of them): a VM's model name alone may not tell an
    AVX2 machine from an AVX-512 one."""
    flags = cpu_flags()
    found = [name for flag, name in ISA_FEATURES if flag in flags]
    return ", ".join(found or [name for flag, name in ISA_FALLBACK if flag in flags])


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it, with its vector extensions in brackets (every
    speed figure names its CPU); the machine architecture where /proc/cpuinfo has none."""
    import platform

    name = _cpuinfo_field("model name") or platform.processor() or platform.machine()
    isa = cpu_isa()
    return f"{name} ({isa})" if isa else name


def cap_onednn_isa() -> None:
    """On AVX-512 CPUs MindSpore 2.10 runs fp32 convolutions with oneDNN's reference code (measured
    70-100x slower); capping oneDNN at AVX2 selects its GEMM kernels. Must run before the first op;
    a value the user already set is kept."""
    if has_avx512() and ONEDNN_ISA_VARIABLE not in os.environ:
        os.environ[ONEDNN_ISA_VARIABLE] = ONEDNN_ISA_CAP
        log.info("AVX-512 CPU: %s=%s (fast oneDNN convolutions)", ONEDNN_ISA_VARIABLE, ONEDNN_ISA_CAP)


def warn_uncapped_onednn_convs() -> None:
    """A model with oneDNN convolutions in a process whose oneDNN runs uncapped on an AVX-512 CPU: warned
    about, as its convolutions take oneDNN's reference kernels."""
    if has_avx512() and ONEDNN_ISA_VARIABLE not in os.environ:
        log.warning("oneDNN convolutions in a process started without the AVX2 cap: they take oneDNN's "
                    "reference kernels (slow); start the process with init_device_for(cfg) or "
                    "%s=%s, or use model.conv_impl=custom", ONEDNN_ISA_VARIABLE, ONEDNN_ISA_CAP)


def init_device(target: str, device_id: int = 0, cpu_threads: int = 0, onednn_conv: bool = False) -> None:
    """Select the device once per process (``mindspore.set_device``) and its per-target settings.

    CPU: op threads = ``cpu_threads`` (0 = one per core; measured best on a 2-core machine, the
    MindSpore default of 25 was ~15 % slower). ``onednn_conv``: the model runs oneDNN convolutions,
    so AVX-512 CPUs get the AVX2 cap (:func:`cap_onednn_isa`); a model whose convs are MatMuls or this
    package's kernel (``model.conv_impl``, the default) leaves oneDNN its full vector width
    (``deepspeech2.model.build.init_device_for`` decides from the config). The cap is fixed at oneDNN's
    first use: a later model with oneDNN convs in an uncapped process is only warned about
    (:func:`warn_uncapped_onednn_convs`).
    GPU/Ascend: the device id (overridden by the launcher's DEVICE_ID/RANK variables under msrun).
    Calling again with the same device arguments is a no-op.
    """
    global _initialised
    import mindspore

    if target not in DEVICE_TARGETS:
        raise ValueError(f"unknown device_target {target!r}; valid: {DEVICE_TARGETS}")
    key = (target, device_id, cpu_threads)
    if _initialised == key:
        if target == "CPU" and onednn_conv:
            warn_uncapped_onednn_convs()
        return
    if _initialised is not None:
        raise RuntimeError(f"device already initialised as {_initialised}; cannot switch to {key}")
    if target == "CPU":
        if onednn_conv:
            cap_onednn_isa()
        mindspore.set_device("CPU")
        threads = cpu_threads or os.cpu_count() or 1
        mindspore.device_context.cpu.op_tuning.threads_num(threads)
        os.environ[KERNEL_THREADS_VARIABLE] = str(threads)
        log.info("device CPU, %d op threads, oneDNN ISA %s", threads, os.environ.get(ONEDNN_ISA_VARIABLE, "default"))
    else:
        mindspore.set_device(target, int(os.environ.get("DEVICE_ID", device_id)))
        log.info("device %s:%s", target, os.environ.get("DEVICE_ID", device_id))
    _initialised = key


class CpuMeter:
    """Cores kept busy between two readings: CPU seconds of this process and its children (the dataset
    workers) per wall second — 2.0 means both cores of a 2-core machine were working throughout."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._last = self._sample()

    def _sample(self) -> tuple[float, float]:
        cpu = 0.0
        for proc in [self._process, *self._process.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except Exception:  # noqa: BLE001 - a worker that just exited (psutil.NoSuchProcess et al.)
                continue
            cpu += times.user + times.system
        return cpu, time.perf_counter()

    def cores_busy(self) -> float:
        """Busy cores since the previous call (or construction)."""
        (cpu0, wall0), (cpu1, wall1) = self._last, self._sample()
        self._last = (cpu1, wall1)
        return max(cpu1 - cpu0, 0.0) / max(wall1 - wall0, 1e-9)
