"""Error rates per voice: a set's ``recogs-<set>.txt`` joined with its split's ``SPEAKERS.TXT``.

The quickstart's test sets are small (6 readers, ~33 utterances each), so one voice can move a set's CER
by several points; this table says which voice. Readers are grouped by :func:`voice_of`: a synthetic
reader's engine and voice (``flite awb``, ``espeak-ng en-gb-scotland``), a real reader by name.

``python -m deepspeech2.lab.voices --recogs exp/lab_small/eval/recogs-test_heldout-beam.txt
--speakers data/corpus/test-heldout.tar.gz``
"""
from __future__ import annotations

import argparse
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from deepspeech2.decoding.metrics import error_totals, read_recogs

__all__ = ["VoiceRates", "read_speakers", "voice_of", "rates_by_voice", "format_voice_table", "voices_of_test_sets",
           "format_voices_of_test_sets", "main"]

SPEAKERS_FILE = "SPEAKERS.TXT"
SPEAKERS_COLUMNS = 5                 # ID | SEX | SUBSET | MINUTES | NAME
SYNTHETIC_ENGINES = ("flite", "espeak-ng")
UNKNOWN_VOICE = "(not in SPEAKERS.TXT)"
TEST_SETS = ("test_clean", "test_other", "test_heldout")   # prepared names; the archives say test-clean, ...


@dataclass(frozen=True)
class VoiceRates:
    voice: str
    readers: int
    utterances: int
    wer: float
    cer: float


def _parse_speakers(text: str, source: str) -> dict[str, str]:
    """LibriSpeech SPEAKERS.TXT rows (``;`` comments, ``|``-separated) → speaker id → NAME."""
    names = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        fields = [field.strip() for field in line.split("|", SPEAKERS_COLUMNS - 1)]
        if len(fields) != SPEAKERS_COLUMNS or not fields[0].isdigit():
            raise ValueError(f"{source}:{number}: not a SPEAKERS.TXT row (ID | SEX | SUBSET | MINUTES | NAME): {line!r}")
        names[fields[0]] = fields[4]
    return names


def read_speakers(source: str | Path) -> dict[str, str]:
    """Speaker id → reader NAME from a SPEAKERS.TXT file or from the one inside a LibriSpeech-layout
    ``.tar.gz`` (read in memory; nothing is extracted)."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file (give a SPEAKERS.TXT or a LibriSpeech split archive)")
    if not tarfile.is_tarfile(source):
        try:
            text = source.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{source}: neither a SPEAKERS.TXT (not UTF-8 text) nor a tar archive") from None
        return _parse_speakers(text, str(source))
    with tarfile.open(source) as archive:
        for member in archive:
            if member.isfile() and Path(member.name).name == SPEAKERS_FILE:
                text = archive.extractfile(member).read().decode("utf-8")
                return _parse_speakers(text, f"{source}:{member.name}")
    raise ValueError(f"{source}: the archive has no {SPEAKERS_FILE}")


def voice_of(name: str) -> str:
    """``flite awb stretch 1.02 warp 0.981`` → ``flite awb``; ``espeak-ng en-us+m3 170 wpm ...`` →
    ``espeak-ng en-us`` (the accent without its variant); any other name (a real reader) unchanged."""
    words = name.split()
    if len(words) >= 2 and words[0] in SYNTHETIC_ENGINES:
        return f"{words[0]} {words[1].split('+')[0]}"
    return name


def rates_by_voice(recogs: str | Path, speakers: dict[str, str]) -> list[VoiceRates]:
    """Corpus WER/CER of each voice's utterances (LibriSpeech ids: the speaker is the id's first field),
    most errors per character first."""
    def speaker(utt_id: str) -> str:
        return utt_id.split("-")[0]

    groups: dict[str, list] = {}
    for result in read_recogs(recogs):
        name = speakers.get(speaker(result.utt_id))
        groups.setdefault(voice_of(name) if name is not None else UNKNOWN_VOICE, []).append(result)
    rows = []
    for voice, results in groups.items():
        totals = error_totals(results)
        readers = len({speaker(r.utt_id) for r in results})
        rows.append(VoiceRates(voice, readers, totals.utterances, totals.wer, totals.cer))
    return sorted(rows, key=lambda row: (-row.cer, row.voice))


def format_voice_table(rows: list[VoiceRates]) -> str:
    lines = ["| voice | readers | utterances | WER % | CER % |", "|---|---|---|---|---|"]
    lines += [f"| {r.voice} | {r.readers} | {r.utterances} | {100 * r.wer:.2f} | {100 * r.cer:.2f} |" for r in rows]
    return "\n".join(lines)


def voices_of_test_sets(eval_dir: str | Path, corpus: str | Path) -> dict[str, tuple[str, list[VoiceRates]]]:
    """Per-voice rates of each test set a run evaluated: set → (decoder, rows), from its beam decode
    (greedy when there is none) and the set's archive in ``corpus`` (``test_clean`` → ``test-clean.tar.gz``);
    sets without both are left out."""
    tables = {}
    for name in TEST_SETS:
        archive = Path(corpus) / f"{name.replace('_', '-')}.tar.gz"
        decodes = [(decoder, Path(eval_dir) / f"recogs-{name}{suffix}.txt")
                   for decoder, suffix in (("beam", "-beam"), ("greedy", ""))]
        decodes = [(decoder, recogs) for decoder, recogs in decodes if recogs.is_file()]
        if decodes and archive.is_file():
            decoder, recogs = decodes[0]
            tables[name] = (decoder, rates_by_voice(recogs, read_speakers(archive)))
    return tables


def format_voices_of_test_sets(tables: dict[str, tuple[str, list[VoiceRates]]]) -> str:
    """Markdown: one per-voice table per test set, each headed by the set and its decoder."""
    return "\n\n".join(f"**{name}** ({decoder}):\n\n{format_voice_table(rows)}"
                       for name, (decoder, rows) in tables.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepspeech2.lab.voices", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recogs", required=True, help="recogs-<set>.txt written by ds2-eval")
    parser.add_argument("--speakers", required=True, help="the split's SPEAKERS.TXT or its .tar.gz archive")
    args = parser.parse_args(argv)
    try:
        print(format_voice_table(rates_by_voice(args.recogs, read_speakers(args.speakers))))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
