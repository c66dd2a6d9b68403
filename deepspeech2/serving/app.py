"""The FastAPI application: ``POST /v1/transcribe``, ``GET /v1/health``, ``GET /v1/model``,
WebSocket ``/v1/stream`` and the web page at ``/`` (static files in ``serving/static``)."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from deepspeech2.inference.acoustic import AcousticModel
from deepspeech2.inference.streaming import can_stream
from deepspeech2.inference.transcribe import DEFAULT_CHUNK_SECONDS, transcribe_audio
from deepspeech2.serving.stream import serve_stream
from deepspeech2.serving.uploads import BadInput, Limits, check_content_type, decode_upload
from deepspeech2.serving.worker import ModelWorker, WorkerBusy

__all__ = ["create_app", "STATIC_DIR"]

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD = 64 * 1024      # multipart headers around the file, allowed above the upload limit


def model_info(model: AcousticModel) -> dict:
    """What ``GET /v1/model`` reports."""
    cfg = model.model
    reason = can_stream(model)
    return {
        "model_path": model.source,
        "format": "mindir" if model.network is None else "checkpoint",
        "preset": (f"{'bi' if cfg.bidirectional else 'uni'}directional {cfg.rnn_type} {cfg.num_layers}x"
                   f"{cfg.hidden_size}, conv {cfg.conv_stack} x{cfg.conv_channels}"),
        "parameters": model.parameters,
        "labels": list(model.vocab.labels),
        "blank": model.vocab.blank,
        "model": dataclasses.asdict(cfg),
        "features": dataclasses.asdict(model.features),
        "decoder": "greedy (word times come from its CTC alignment)",
        "output_frame_seconds": model.frame_seconds,
        "streaming": "incremental" if not reason else f"re-decoding ({reason})",
    }


async def _read_upload(request: Request, limits: Limits) -> UploadFile:
    """The form's ``file`` part, after the request-level checks (content type, declared size)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise BadInput(415, f"expected a multipart/form-data upload with a 'file' field, got content type "
                            f"{ctype or 'none'!r}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_upload_bytes + FORM_OVERHEAD:
        raise BadInput(413, f"request of {int(declared) / (1 << 20):.1f} MB is over the upload limit of "
                            f"{limits.max_upload_bytes / (1 << 20):.1f} MB")
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception as err:   # starlette raises its own MultiPartException / HTTPException types
        raise BadInput(400, f"malformed multipart form: {getattr(err, 'detail', None) or err}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadInput(422, "the form has no 'file' part with an uploaded file")
    return upload


def create_app(model: AcousticModel, limits: Limits = Limits()) -> FastAPI:
    """The service around one loaded model; all model work goes through one worker thread."""
    worker = ModelWorker(limits.max_pending)
    started = time.time()
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        worker.close()

    app = FastAPI(title="DeepSpeech2 (MindSpore)", version="1", lifespan=lifespan)
    app.state.worker, app.state.model, app.state.limits = worker, model, limits

    @app.exception_handler(BadInput)
    async def bad_input(_request, err: BadInput):
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(WorkerBusy)
    async def busy(_request, err: WorkerBusy):
        return JSONResponse({"detail": str(err)}, status_code=503)

    def transcribe(stream, filename: str) -> dict:
        t0 = time.perf_counter()
        audio = decode_upload(stream, filename, model.features.sample_rate, limits)
        text, words = transcribe_audio(audio, model, None, DEFAULT_CHUNK_SECONDS, timestamps=True)
        duration, elapsed = audio.size / model.features.sample_rate, time.perf_counter() - t0
        return {"text": text, "words": words, "duration": round(duration, 3),
                "processing_time": round(elapsed, 3), "rtf": round(elapsed / duration, 4)}

    @app.post("/v1/transcribe")
    async def transcribe_upload(request: Request) -> dict:
        upload = await _read_upload(request, limits)
        filename = upload.filename or "upload"
        check_content_type(upload.content_type or "", filename)
        try:
            result = await worker.run(transcribe, upload.file, filename)
        finally:
            await upload.close()
        log.info("%s: %.2f s of audio in %.2f s", filename, result["duration"], result["processing_time"])
        return result

    @app.get("/v1/health")
    async def health() -> dict:
        return {"status": "ok", "queued": worker.pending, "uptime": round(time.time() - started, 1)}

    @app.get("/v1/model")
    async def describe() -> dict:
        return model_info(model)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await serve_stream(ws, model, worker, limits)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
