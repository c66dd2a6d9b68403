"""Statistics of a generated split and the corpus-level generation report."""

from __future__ import annotations

import os
import resource

import numpy as np

from data_prep.corpus.plan import SplitPlan
from data_prep.corpus.voices import ESPEAK, FLITE

__all__ = ["CpuClock", "machine_load", "split_statistics", "summarise"]

SECONDS_PER_HOUR, SECONDS_PER_MINUTE = 3600.0, 60.0
HISTOGRAM_BIN_SECONDS = 2.0
HISTOGRAM_MAX_SECONDS = 36.0     # LibriSpeech's longest utterances are ~35 s
P90 = 90
LAST_BIN_EPSILON = 1e-9          # keeps over-long durations inside the last histogram bin
DECIMALS = 3


class CpuClock:
    """CPU seconds used by this process and its waited-for children (workers, TTS programs)."""

    def __init__(self) -> None:
        self.start = self._now()

    @staticmethod
    def _now() -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            total += usage.ru_utime + usage.ru_stime
        return total

    def elapsed(self) -> float:
        """CPU seconds since construction (children count once they have been joined)."""
        return self._now() - self.start


def machine_load() -> dict[str, float]:
    """The 1/5/15-minute load averages and the CPU count: context for the timings."""
    one, five, fifteen = os.getloadavg()
    return {"load_1min": round(one, 2), "load_5min": round(five, 2),
            "load_15min": round(fifteen, 2), "cpu_count": os.cpu_count() or 1}


def _histogram(durations: np.ndarray) -> dict[str, int]:
    """Counts per HISTOGRAM_BIN_SECONDS bin; the last bin collects everything longer."""
    edges = np.arange(0.0, HISTOGRAM_MAX_SECONDS + HISTOGRAM_BIN_SECONDS, HISTOGRAM_BIN_SECONDS)
    counts, _ = np.histogram(np.minimum(durations, edges[-1] - LAST_BIN_EPSILON), bins=edges)
    return {f"{lo:g}-{hi:g}s": int(n) for lo, hi, n in zip(edges[:-1], edges[1:], counts)}


def split_statistics(plan: SplitPlan, durations: dict[str, float], cpu_seconds: float,
                     wall_seconds: float) -> dict:
    """Statistics of one generated split (hours, counts, durations, engines, speed)."""
    seconds = np.array([durations[u.utt_id] for u in plan.utterances()])
    hours = float(seconds.sum()) / SECONDS_PER_HOUR
    engine_seconds = {FLITE: 0.0, ESPEAK: 0.0}
    for utterance in plan.utterances():
        engine_seconds[utterance.speaker.engine] += durations[utterance.utt_id]
    total = sum(engine_seconds.values())
    return {
        "requested_hours": plan.hours,
        "hours": round(hours, DECIMALS + 1),
        "utterances": int(seconds.size),
        "speakers": len(plan.speakers),
        "chapters": len(plan.chapters),
        "noisy": plan.spec.noisy,
        "text_family": plan.spec.family,
        "books": sorted({c.source.title for c in plan.chapters}),
        "duration_seconds": {
            "min": round(float(seconds.min()), DECIMALS),
            "median": round(float(np.median(seconds)), DECIMALS),
            "mean": round(float(seconds.mean()), DECIMALS),
            "p90": round(float(np.percentile(seconds, P90)), DECIMALS),
            "max": round(float(seconds.max()), DECIMALS),
            "histogram": _histogram(seconds),
        },
        "engine_share": {engine: round(s / total, DECIMALS) for engine, s in
                         engine_seconds.items()},
        "cpu_seconds": round(cpu_seconds, 2),
        "wall_seconds": round(wall_seconds, 2),
        "cpu_seconds_per_audio_hour": round(cpu_seconds / hours, 1) if hours else None,
        "audio_hours_per_wall_minute": (round(hours / (wall_seconds / SECONDS_PER_MINUTE),
                                              DECIMALS) if wall_seconds else None),
    }


def summarise(split_reports: dict[str, dict], wall_seconds: float, jobs: int, seed: int,
              load_before: dict[str, float]) -> dict:
    """The corpus-level report: per-split statistics plus totals of this run."""
    generated = {name: r for name, r in split_reports.items() if not r.get("skipped")}
    hours = sum(r["hours"] for r in generated.values())
    cpu = sum(r["cpu_seconds"] for r in generated.values())
    return {
        "seed": seed,
        "jobs": jobs,
        "splits": split_reports,
        "this_run": {
            "generated_splits": sorted(generated),
            "skipped_splits": sorted(set(split_reports) - set(generated)),
            "audio_hours": round(hours, DECIMALS + 1),
            "wall_seconds": round(wall_seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "cpu_seconds_per_audio_hour": round(cpu / hours, 1) if hours else None,
            "audio_hours_per_wall_minute": (round(hours / (wall_seconds / SECONDS_PER_MINUTE),
                                                  DECIMALS) if hours else None),
            "load_before": load_before,
            "load_after": machine_load(),
        },
    }
