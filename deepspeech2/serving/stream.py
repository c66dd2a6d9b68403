"""WebSocket ``/v1/stream``: binary frames of 16-bit little-endian mono PCM at the model's rate in,
JSON text frames out.

Client → server: binary PCM frames (any size up to the frame limit; 320 ms is typical), then the
text frame ``{"type": "end"}``. Server → client: ``{"type": "partial", "text", "seconds"}`` after
each frame, ``{"type": "final", "text", "words", "duration", "processing_time", "rtf"}`` at the end,
or ``{"type": "error", "message"}`` followed by a close (1003 unsupported data, 1007 bad payload,
1009 too big, 1013 busy) — the server itself keeps running.
"""
from __future__ import annotations

import json
import logging
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from deepspeech2.inference.streaming import make_recognizer
from deepspeech2.serving.uploads import BadInput, Limits, pcm16_to_float
from deepspeech2.serving.worker import ModelWorker, WorkerBusy

__all__ = ["serve_stream"]

log = logging.getLogger(__name__)
CLOSE_CODES = {400: 1007, 413: 1009, 415: 1003, 503: 1013}


def _is_end(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        raise BadInput(415, f"text frames must be JSON like {{\"type\": \"end\"}}, got {text[:40]!r}") from None
    if not isinstance(message, dict) or message.get("type") != "end":
        raise BadInput(415, f"unknown control message {text[:60]!r}; the only one is {{\"type\": \"end\"}}")
    return True


async def _run_session(ws: WebSocket, model, worker: ModelWorker, limits: Limits) -> None:
    recognizer = await worker.run(make_recognizer, model)
    busy = 0.0
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("bytes") is not None:
            audio = pcm16_to_float(message["bytes"], limits)
            if recognizer.seconds + audio.size / model.features.sample_rate > limits.max_audio_seconds:
                raise BadInput(413, f"stream is over the audio limit of {limits.max_audio_seconds:.1f} s")
            t0 = time.perf_counter()
            text = await worker.run(recognizer.accept, audio)
            busy += time.perf_counter() - t0
            await ws.send_json({"type": "partial", "text": text, "seconds": round(recognizer.seconds, 3)})
        elif _is_end(message.get("text") or ""):
            t0 = time.perf_counter()
            text, words = await worker.run(recognizer.finish)
            busy += time.perf_counter() - t0
            seconds = recognizer.seconds
            await ws.send_json({"type": "final", "text": text, "words": words, "duration": round(seconds, 3),
                                "processing_time": round(busy, 3), "rtf": round(busy / seconds, 4) if seconds else 0.0})
            await ws.close(1000)
            return


async def serve_stream(ws: WebSocket, model, worker: ModelWorker, limits: Limits) -> None:
    """One streaming session; bad frames end it with an error message, never the server."""
    await ws.accept()
    try:
        await _run_session(ws, model, worker, limits)
    except WebSocketDisconnect:
        log.info("stream client disconnected")
    except (BadInput, WorkerBusy) as err:
        status = err.status if isinstance(err, BadInput) else 503
        log.info("stream closed: %s", err)
        await ws.send_json({"type": "error", "message": str(err)})
        await ws.close(CLOSE_CODES.get(status, 1008))
