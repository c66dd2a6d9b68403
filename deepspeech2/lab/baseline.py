"""Independent baseline: pocketsphinx (its bundled US-English model) on the same manifest.

``python -m deepspeech2.lab.baseline --manifest M.json --out exp/x/baseline/pocketsphinx-test_clean.json``
Scores with the same WER/CER code as ``ds2-eval``. Needs ``pip install pocketsphinx``
(the ``baseline`` extra).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from deepspeech2.data.audio import load_audio
from deepspeech2.data.manifest import read_manifest, read_transcript
from deepspeech2.decoding.metrics import error_totals, score_utterance, write_recogs, write_wer_summary
from deepspeech2.data.vocab import normalize_transcript

__all__ = ["run_pocketsphinx", "main"]

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000          # pocketsphinx's en-us model
INT16_MAX = 32767


def run_pocketsphinx(manifest: str | Path, limit: int = 0) -> tuple[list, float, float]:
    """Decode every utterance; returns (UtteranceResults, audio seconds, wall seconds)."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        raise SystemExit("pocketsphinx is not installed: pip install pocketsphinx") from None
    decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
    samples = read_manifest(manifest)[:limit or None]
    results, audio_s, t0 = [], 0.0, time.time()
    for sample in samples:
        audio = load_audio(sample.wav_path, SAMPLE_RATE)
        pcm = (np.clip(audio, -1, 1) * INT16_MAX).astype(np.int16)
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = normalize_transcript(decoder.hyp().hypstr if decoder.hyp() else "")
        results.append(score_utterance(Path(sample.wav_path).stem, normalize_transcript(read_transcript(sample)), hyp))
        audio_s += audio.size / SAMPLE_RATE
    return results, audio_s, time.time() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepspeech2.lab.baseline", description=__doc__)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True, help="summary JSON to write (recogs/wer-summary beside it)")
    parser.add_argument("--set", default="", help="name of the set in the summary")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances only (0 = all)")
    args = parser.parse_args(argv)
    results, audio_s, wall = run_pocketsphinx(args.manifest, args.limit)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_recogs(out.with_suffix(".recogs.txt"), results)
    write_wer_summary(out.with_suffix(".wer-summary.txt"), results)
    totals = error_totals(results)
    summary = {"system": "pocketsphinx (bundled en-us model)", "set": args.set or Path(args.manifest).stem,
               "wer": totals.wer, "cer": totals.cer, "utterances": totals.utterances, "rtf": wall / max(audio_s, 1e-9), "manifest": str(args.manifest)}
    out.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"pocketsphinx {summary['set']}: WER {100 * summary['wer']:.2f}  CER {100 * summary['cer']:.2f}  "
          f"({summary['utterances']} utterances, RTF {summary['rtf']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
