"""ds2-serve: the API through FastAPI's test client (checkpoint and MINDIR), bad input → 4xx with a
message, the WebSocket stream, and a real uvicorn process on 127.0.0.1."""
from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import soundfile

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from deepspeech2.serving.uploads import Limits  # noqa: E402


def make_client(model, **limits) -> TestClient:
    from deepspeech2.serving.app import create_app

    return TestClient(create_app(model, Limits(**limits)))


@pytest.fixture(scope="module")
def stream_model(tiny_stream_checkpoint):
    from deepspeech2.core.config import load_config
    from deepspeech2.inference.acoustic import load_acoustic_model

    cfg = load_config(None, ["train.cpu_threads=2"])      # model, features, labels come from the checkpoint
    return load_acoustic_model(tiny_stream_checkpoint, cfg)


@pytest.fixture(scope="module")
def client(stream_model):
    with make_client(stream_model) as test_client:
        yield test_client


def _offline_text(model, path) -> str:
    from deepspeech2.inference.transcribe import DEFAULT_CHUNK_SECONDS, transcribe_file

    return transcribe_file(str(path), model, None, DEFAULT_CHUNK_SECONDS, timestamps=True).text


def _upload(client, name: str, data: bytes, ctype: str = "audio/wav"):
    return client.post("/v1/transcribe", files={"file": (name, data, ctype)})


def test_transcribe_a_clip_any_rate_and_channels(client, stream_model, speech_clips):
    model, path = stream_model, speech_clips["canoe"][0]
    body = _upload(client, "canoe.flac", path.read_bytes(), "audio/flac").json()
    assert body["text"] == _offline_text(model, path)
    assert set(body) == {"text", "words", "duration", "processing_time", "rtf"}
    audio, rate = soundfile.read(path)
    assert body["duration"] == pytest.approx(audio.size / rate, abs=1e-3)
    assert body["rtf"] == pytest.approx(body["processing_time"] / body["duration"], rel=0.05)
    assert " ".join(w["word"] for w in body["words"]) == body["text"]
    assert all(0 <= w["start"] < w["end"] <= body["duration"] + 0.05 for w in body["words"])
    buffer = io.BytesIO()                       # 44.1 kHz stereo wav, as a browser might send
    import librosa
    hi = librosa.resample(audio, orig_sr=rate, target_sr=44100)
    soundfile.write(buffer, np.stack([hi, hi], 1), 44100, format="WAV", subtype="PCM_16")
    stereo = _upload(client, "stereo.wav", buffer.getvalue())
    assert stereo.status_code == 200 and stereo.json()["duration"] == pytest.approx(body["duration"], abs=1e-3)


def test_health_and_model(client, stream_model):
    model = stream_model
    assert client.get("/v1/health").json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["parameters"] == model.parameters > 0 and info["format"] == "checkpoint"
    assert info["labels"] == list(model.vocab.labels) and info["features"]["normalize"] is False
    assert info["model_path"] == str(model.source) and info["streaming"] == "incremental"
    assert info["output_frame_seconds"] == pytest.approx(0.02)     # 10-ms hop × the zoo stack's time stride 2
    page = client.get("/")
    assert page.status_code == 200 and 'id="transcript"' in page.text
    assert client.get("/static/app.js").status_code == 200


@pytest.mark.parametrize("name, data, ctype, status, words", [
    ("notes.txt", b"hello world", "text/plain", 415, "not audio"),
    ("fake.wav", b"RIFF\x00\x00\x00\x00WAVEjunk" * 10, "audio/wav", 422, "fake.wav"),
    ("empty.wav", b"", "audio/wav", 400, "empty"),
    ("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png", 415, "image/png"),
])
def test_bad_uploads_are_4xx_with_a_message(client, name, data, ctype, status, words):
    response = _upload(client, name, data, ctype)
    assert response.status_code == status and words in response.json()["detail"]
    assert client.get("/v1/health").status_code == 200


def test_requests_that_are_not_uploads(client):
    not_form = client.post("/v1/transcribe", json={"file": "x"})
    assert not_form.status_code == 415 and "multipart/form-data" in not_form.json()["detail"]
    no_file = client.post("/v1/transcribe", data={"name": "x"})
    assert no_file.status_code == 415
    wrong_field = client.post("/v1/transcribe", files={"audio": ("a.wav", b"RIFF", "audio/wav")})
    assert wrong_field.status_code == 422 and "'file'" in wrong_field.json()["detail"]


def test_size_and_duration_limits(stream_model, speech_clips):
    data = speech_clips["canoe"][0].read_bytes()
    with make_client(stream_model, max_upload_bytes=len(data) - 1) as small:
        response = _upload(small, "canoe.flac", data, "audio/flac")
        assert response.status_code == 413 and "upload limit" in response.json()["detail"]
    with make_client(stream_model, max_audio_seconds=0.5) as short:
        response = _upload(short, "canoe.flac", data, "audio/flac")
        assert response.status_code == 413 and "over the limit of 0.5 s" in response.json()["detail"]
        with short.websocket_connect("/v1/stream") as ws:
            ws.send_bytes(np.zeros(16000, "<i2").tobytes())
            assert ws.receive_json() == {"type": "error", "message": "stream is over the audio limit of 0.5 s"}


def test_stream_partials_and_final_equal_offline(client, stream_model, speech_clips):
    model, path = stream_model, speech_clips["stew"][0]
    pcm, _ = soundfile.read(path, dtype="int16")
    with client.websocket_connect("/v1/stream") as ws:
        partials = []
        for begin in range(0, pcm.size, 5120):
            ws.send_bytes(pcm[begin:begin + 5120].tobytes())
            partials.append(ws.receive_json())
        ws.send_text(json.dumps({"type": "end"}))
        final = ws.receive_json()
    assert [p["type"] for p in partials] == ["partial"] * len(partials)
    assert final["type"] == "final" and final["text"] == _offline_text(model, path)
    assert all(final["text"].startswith(p["text"]) for p in partials)


@pytest.mark.parametrize("send, words", [(b"\x01\x02\x03", "odd byte count"), ("hello", "must be JSON"),
                                         ('{"type": "pause"}', "unknown control message"), (b"", "empty")])
def test_malformed_stream_frames_get_an_error_and_a_close(client, send, words):
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("/v1/stream") as ws:
        ws.send_bytes(send) if isinstance(send, bytes) else ws.send_text(send)
        message = ws.receive_json()
        assert message["type"] == "error" and words in message["message"]
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
    assert client.get("/v1/health").json()["status"] == "ok"


def test_worker_queue_is_bounded():
    from deepspeech2.serving.worker import ModelWorker, WorkerBusy

    async def run():
        worker = ModelWorker(max_pending=2)
        jobs = [asyncio.ensure_future(worker.run(time.sleep, 0.2)) for _ in range(3)]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        worker.close()
        return results

    results = asyncio.run(run())
    assert results[:2] == [None, None] and isinstance(results[2], WorkerBusy)


def test_mindir_and_checkpoint_both_serve(tiny_config, tiny_checkpoint, tmp_path, speech_clips):
    from deepspeech2.inference.acoustic import load_acoustic_model
    from deepspeech2.inference.export import export_model

    cfg = dataclasses.replace(tiny_config, export=dataclasses.replace(tiny_config.export,
                                                                      file_name=str(tmp_path / "tiny")))
    mindir = export_model(cfg, tiny_checkpoint)
    data = speech_clips["no"][0].read_bytes()
    texts = {}
    for path in (tiny_checkpoint, mindir):
        with make_client(load_acoustic_model(path, cfg)) as test_client:
            info = test_client.get("/v1/model").json()
            assert info["model_path"] == str(path) and info["parameters"] > 0
            response = _upload(test_client, "no.flac", data, "audio/flac")
            assert response.status_code == 200
            texts[info["format"]] = response.json()["text"]
    assert texts["mindir"] == texts["checkpoint"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model_path, port: int, *extra: str) -> subprocess.Popen:
    """``ds2-serve`` in a subprocess; returns once /v1/health answers."""
    proc = subprocess.Popen([sys.executable, "-m", "deepspeech2.cli.serve", "--model", str(model_path),
                             "--port", str(port), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ds2-serve exited: {proc.stdout.read()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("ds2-serve did not start within 180 s")


def post_file(port: int, name: str, data: bytes, ctype: str = "audio/flac") -> tuple[int, dict]:
    """multipart/form-data POST to /v1/transcribe with the standard library."""
    boundary = "ds2testboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: {ctype}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/transcribe", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_real_uvicorn_process(tiny_stream_checkpoint, speech_clips):
    websockets = pytest.importorskip("websockets.sync.client")
    port = free_port()
    proc = start_server(tiny_stream_checkpoint, port)
    try:
        status, body = post_file(port, "greek.flac", speech_clips["greek"][0].read_bytes())
        assert status == 200 and body["duration"] > 0
        assert post_file(port, "junk.wav", b"not audio at all", "audio/wav")[0] == 422
        pcm, _ = soundfile.read(speech_clips["greek"][0], dtype="int16")
        with websockets.connect(f"ws://127.0.0.1:{port}/v1/stream") as ws:
            ws.send(pcm.tobytes())
            assert json.loads(ws.recv())["type"] == "partial"
            ws.send('{"type": "end"}')
            assert json.loads(ws.recv())["text"] == body["text"]
    finally:
        proc.terminate()
        log = proc.communicate(timeout=60)[0]
    assert f"http://127.0.0.1:{port}" in log           # binds to localhost by default
