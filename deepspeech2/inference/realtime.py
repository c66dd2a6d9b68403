"""Real-time drivers for a streaming recogniser: a file played at real-time pace (``ds2-transcribe
--stream``) and a live microphone through sounddevice (``--mic``)."""
from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from deepspeech2.data.audio import ZOO_INT16_RESCALE

__all__ = ["StreamReport", "simulate_stream", "check_microphone", "listen_microphone", "MicrophoneUnavailable"]

log = logging.getLogger(__name__)


class MicrophoneUnavailable(RuntimeError):
    """sounddevice is missing or there is no input device."""


@dataclass
class StreamReport:
    text: str = ""
    words: list = field(default_factory=list)
    duration: float = 0.0                                       # audio seconds
    latencies: list[float] = field(default_factory=list)       # per chunk: processing time after its arrival (s)
    processing_time: float = 0.0                                # all chunks and the final flush (s)

    @property
    def rtf(self) -> float:
        return self.processing_time / self.duration if self.duration else 0.0

    def summary(self) -> dict:
        lat = np.array(self.latencies or [0.0]) * 1000.0
        return {"text": self.text, "words": self.words, "duration": round(self.duration, 3),
                "chunks": len(self.latencies), "latency_ms": {"mean": round(float(lat.mean()), 1),
                "p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                "max": round(float(lat.max()), 1)}, "processing_time": round(self.processing_time, 3),
                "rtf": round(self.rtf, 4)}


def _timed(report: StreamReport, fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    report.processing_time += time.perf_counter() - t0
    return out, time.perf_counter() - t0


def simulate_stream(audio: np.ndarray, recognizer, rate: int, chunk_seconds: float, pace: float = 1.0,
                    on_partial: Callable[[str], None] = lambda text: None) -> StreamReport:
    """Feed ``audio`` in chunks of ``chunk_seconds``, each when it would have arrived live (``pace`` 1 =
    real time, 0 = no waiting); latency = processing time of a chunk after its arrival."""
    step = max(1, int(round(chunk_seconds * rate)))
    report, start, partial = StreamReport(duration=audio.size / rate), time.perf_counter(), ""
    for begin in range(0, audio.size, step):
        chunk = audio[begin:begin + step]
        if pace > 0:
            time.sleep(max(0.0, start + (begin + chunk.size) / rate / pace - time.perf_counter()))
        text, latency = _timed(report, recognizer.accept, chunk)
        report.latencies.append(latency)
        if text != partial:
            partial = text
            on_partial(text)
    (report.text, report.words), _ = _timed(report, recognizer.finish)
    return report


def check_microphone(rate: int):
    """The sounddevice module if it is importable and an input device takes mono ``rate`` Hz audio;
    raises MicrophoneUnavailable (with the reason in one line) otherwise."""
    try:
        import sounddevice
    except ImportError:
        raise MicrophoneUnavailable("sounddevice is not installed (pip install sounddevice)") from None
    except OSError as err:                   # the PortAudio library itself is missing
        raise MicrophoneUnavailable(f"sounddevice cannot load PortAudio ({err}; apt-get install libportaudio2)") from None
    try:
        sounddevice.check_input_settings(samplerate=rate, channels=1, dtype="float32")
    except Exception as err:                 # PortAudioError / ValueError: no (suitable) input device
        raise MicrophoneUnavailable(f"no microphone: {err}") from None
    return sounddevice


def listen_microphone(recognizer, rate: int, chunk_seconds: float,
                      on_partial: Callable[[str], None] = lambda text: None) -> StreamReport:
    """Recognise the default input device until Ctrl-C; raises MicrophoneUnavailable without one."""
    sounddevice = check_microphone(rate)
    chunks: queue.Queue = queue.Queue()
    report, partial = StreamReport(), ""
    block = int(round(chunk_seconds * rate))
    with sounddevice.InputStream(samplerate=rate, channels=1, dtype="float32", blocksize=block,
                                 callback=lambda data, *_: chunks.put(data[:, 0] * np.float32(ZOO_INT16_RESCALE))):
        log.info("listening at %d Hz; Ctrl-C to stop", rate)
        try:
            while True:
                chunk = chunks.get()
                report.duration += chunk.size / rate
                text, latency = _timed(report, recognizer.accept, chunk)
                report.latencies.append(latency)
                if text != partial:
                    partial = text
                    on_partial(text)
        except KeyboardInterrupt:
            pass
    (report.text, report.words), _ = _timed(report, recognizer.finish)
    return report
