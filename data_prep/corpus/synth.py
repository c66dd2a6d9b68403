"""Run the TTS engines (espeak-ng, flite) and render one utterance to a FLAC file.

``render_utterance`` is the unit of parallel work: it depends only on its job (text, speaker,
seed), so the audio is the same whichever worker process makes it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from deepspeech2.core.files import atomic_write_bytes

from data_prep.corpus.audio import (
    SAMPLE_RATE, RenderSettings, encode_flac, finish_recording, resample, trim_silence)
from data_prep.corpus.voices import ENGINE_PACKAGES, ESPEAK, FLITE, Speaker

__all__ = ["EngineMissingError", "RenderJob", "check_engines", "parse_wav",
           "render_utterance", "synthesize"]

ENGINE_TIMEOUT_SECONDS = 120
WAV_HEADER_ID, WAV_FORMAT_ID = b"RIFF", b"WAVE"
WAV_CHUNK_HEADER_BYTES = 8
WAV_FIRST_CHUNK_OFFSET = 12
PCM_FORMAT_TAG, MONO, PCM16_BITS = 1, 1, 16
INT16_FULL_SCALE = 32768.0


class EngineMissingError(RuntimeError):
    """A TTS program is not installed."""


def check_engines(engines: tuple[str, ...] = (FLITE, ESPEAK)) -> None:
    """Raise EngineMissingError naming the Debian package of every missing engine."""
    missing = [engine for engine in engines if shutil.which(engine) is None]
    if missing:
        packages = " ".join(ENGINE_PACKAGES[engine] for engine in missing)
        raise EngineMissingError(
            f"{', '.join(missing)} not found on PATH; install the Debian package(s): "
            f"apt-get install --no-install-recommends {packages}")


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Decode mono 16-bit PCM WAV bytes to float samples (T,) and the sample rate.

    Tolerates the placeholder sizes espeak-ng writes when streaming to stdout.
    """
    if data[:4] != WAV_HEADER_ID or data[8:12] != WAV_FORMAT_ID:
        raise ValueError("engine output is not a RIFF/WAVE file")
    offset, rate = WAV_FIRST_CHUNK_OFFSET, 0
    while offset + WAV_CHUNK_HEADER_BYTES <= len(data):
        chunk_id = data[offset:offset + 4]
        size = struct.unpack("<I", data[offset + 4:offset + WAV_CHUNK_HEADER_BYTES])[0]
        body = offset + WAV_CHUNK_HEADER_BYTES
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", data[body:body + 8])
            bits = struct.unpack("<H", data[body + 14:body + 16])[0]
            if (tag, channels, bits) != (PCM_FORMAT_TAG, MONO, PCM16_BITS):
                raise ValueError(f"unsupported WAV format tag={tag} channels={channels} "
                                 f"bits={bits}")
        elif chunk_id == b"data":
            end = min(len(data), body + size)
            end -= (end - body) % 2
            samples = np.frombuffer(data[body:end], dtype="<i2").astype(np.float64)
            return samples / INT16_FULL_SCALE, rate
        offset = body + size + (size % 2)
    raise ValueError("WAV data chunk not found")


def _espeak_command(speaker: Speaker) -> list[str]:
    """espeak-ng command line writing WAV to stdout; text comes on stdin."""
    return [ESPEAK, "-v", speaker.voice, "-s", str(int(speaker.rate)), "-p", str(speaker.pitch),
            "--stdout"]


def _flite_command(speaker: Speaker, text_path: Path, wav_path: Path) -> list[str]:
    """flite command line reading ``text_path`` and writing ``wav_path``."""
    command = [FLITE, "-voice", speaker.voice, "-f", str(text_path), "-o", str(wav_path),
               "--setf", f"duration_stretch={speaker.rate:.2f}"]
    if speaker.pitch:
        command += ["--setf", f"int_f0_target_mean={speaker.pitch}"]
    return command


def synthesize(speaker: Speaker, text: str) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``speaker``'s engine and settings; return samples (T,) and rate."""
    if speaker.engine == ESPEAK:
        result = subprocess.run(_espeak_command(speaker), input=text.encode("utf-8"),
                                capture_output=True, check=True, timeout=ENGINE_TIMEOUT_SECONDS)
        return parse_wav(result.stdout)
    if speaker.engine != FLITE:
        raise ValueError(f"unknown engine {speaker.engine!r}")
    with tempfile.TemporaryDirectory(prefix="ds2-flite-") as tmp:
        text_path, wav_path = Path(tmp) / "text.txt", Path(tmp) / "speech.wav"
        text_path.write_text(text + "\n", encoding="utf-8")
        subprocess.run(_flite_command(speaker, text_path, wav_path), capture_output=True,
                       check=True, timeout=ENGINE_TIMEOUT_SECONDS)
        return parse_wav(wav_path.read_bytes())


@dataclass(frozen=True)
class RenderJob:
    """Everything one worker needs to make one FLAC file."""

    path: Path                        # final .flac path (in the staging tree)
    speaker: Speaker
    tts_text: str
    seed: tuple[int, ...]             # entropy of the utterance's own RNG stream
    noisy: bool


def render_utterance(job: RenderJob) -> tuple[str, float, str]:
    """Synthesise, post-process and write one utterance atomically; skip it if present.

    Returns (utterance id, duration in seconds, engine).
    """
    utt_id = job.path.stem
    if job.path.is_file():
        return utt_id, float(sf.info(str(job.path)).duration), job.speaker.engine
    rng = np.random.default_rng(np.random.SeedSequence(list(job.seed)))
    settings = RenderSettings.draw(rng, job.noisy)
    try:
        raw, rate = synthesize(job.speaker, job.tts_text)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        stderr = (error.stderr or b"").decode("utf-8", "replace").strip()
        raise RuntimeError(f"{utt_id}: {job.speaker.name()} failed on {job.tts_text!r}: "
                           f"{error} {stderr}") from None
    speech = trim_silence(resample(raw, rate, job.speaker.warp))
    samples = finish_recording(speech, settings, rng)
    atomic_write_bytes(job.path, encode_flac(samples))
    return utt_id, samples.size / SAMPLE_RATE, job.speaker.engine
