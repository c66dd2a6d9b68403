"""The preparation's outputs besides the audio: duration-sorted manifests and the summary."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from data_prep.libri.layout import FILTERED, Result, txt_path, wav_path
from deepspeech2.data.manifest import Sample, write_csv_manifest, write_json_manifest

__all__ = ["write_manifests", "summarize", "log_summary"]

logger = logging.getLogger(__name__)


def write_manifests(target: Path, out_split: str, results: list[Result], min_duration: float,
                    max_duration: float) -> dict:
    """Duration-sorted V3 JSON + V2.1 CSV manifests of one output split; returns its statistics."""
    ok = [r for r in results if r.status == "ok" and r.out_split == out_split]
    filtered: Counter = Counter()
    kept = []
    for r in ok:
        if out_split in FILTERED and min_duration > 0 and r.duration < min_duration:
            filtered["too_short"] += 1
        elif out_split in FILTERED and max_duration > 0 and r.duration > max_duration:
            filtered["too_long"] += 1
        else:
            kept.append(r)
    kept.sort(key=lambda r: (r.duration, r.utt))
    samples = [Sample(wav_path(target, out_split, r.utt), txt_path(target, out_split, r.utt)) for r in kept]
    stem = target / f"libri_{out_split}_manifest"
    write_json_manifest(stem.with_suffix(".json"), target / out_split, samples)
    write_csv_manifest(stem.with_suffix(".csv"), samples)
    return {"utterances": len(kept), "hours": sum(r.duration for r in kept) / 3600,
            "filtered": dict(filtered), "manifests": [str(stem.with_suffix(".json")), str(stem.with_suffix(".csv"))]}


def summarize(target: Path, inputs: dict, results: list[Result], splits: dict, wall: float,
              settings: dict) -> dict:
    """Counts, hours and throughput; throughput counts only files converted by this run."""
    good = [r for r in results if r.status == "ok"]
    bad = [r for r in results if r.status != "ok"]
    converted = [r for r in good if r.converted]
    new_hours = sum(r.duration for r in converted) / 3600
    return {
        "target_dir": str(target),
        "inputs": {part: {"kind": kind, "path": str(path)} for part, (kind, path) in inputs.items()},
        "splits": splits,
        "skipped": dict(Counter(r.status for r in bad)),
        "skipped_files": [{"file": r.file, "utterance": r.utt, "reason": r.status, "detail": r.detail} for r in bad],
        "files": {"prepared": len(good), "converted": len(converted), "reused": len(good) - len(converted)},
        "audio_hours": {"prepared": sum(r.duration for r in good) / 3600, "converted": new_hours},
        "wall_time_s": wall,
        "files_per_s": len(converted) / wall if wall > 0 else 0.0,
        "audio_hours_per_min": new_hours / (wall / 60) if wall > 0 else 0.0,
        **settings,
    }


def log_summary(summary: dict) -> None:
    """The summary as a few log lines: per split, skipped input, throughput."""
    logger.info("LibriSpeech preparation summary (%s)", summary["target_dir"])
    for name, s in summary["splits"].items():
        filtered = ", ".join(f"{n} {k}" for k, n in s["filtered"].items()) or "none"
        logger.info("  %-12s %7d utterances %9.3f h  (filtered: %s)", name, s["utterances"], s["hours"], filtered)
    skipped = ", ".join(f"{k}={n}" for k, n in sorted(summary["skipped"].items())) or "none"
    f = summary["files"]
    logger.info("  skipped bad input: %s", skipped)
    hours = summary["audio_hours"]
    logger.info("  %d files, %.3f audio-h (%d files / %.3f h converted now, %d checked and kept) in %.1f s: "
                "%.1f files/s, %.3f audio-h/min", f["prepared"], hours["prepared"], f["converted"],
                hours["converted"], f["reused"], summary["wall_time_s"], summary["files_per_s"],
                summary["audio_hours_per_min"])
