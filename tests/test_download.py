"""Downloader against a local HTTP server on 127.0.0.1: resume, restart, retries, mirrors, md5."""
from __future__ import annotations

import hashlib
import http.server
import os
import re
import threading

import pytest

from data_prep import download
from data_prep.download import ChecksumError, DownloadError, download_file, download_librispeech, md5sum

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /resources/12/<name>; honours Range unless told not to; can fail on demand."""

    server: "Server"

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if srv.failures:
            srv.failures -= 1
            self.send_error(503, "try again")
            return
        if not self.path.startswith(srv.prefix):
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and srv.ranges:
            start = int(match.group(1))
            if start >= len(PAYLOAD):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.drop_after:  # the connection breaks part-way through the body
            body, srv.drop_after = body[: srv.drop_after], 0
            self.close_connection = True
        srv.bytes_sent += len(body)  # counted first: the client may finish before this thread resumes
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    def __init__(self, prefix="/resources/12/"):
        super().__init__(("127.0.0.1", 0), Handler)
        self.prefix, self.ranges, self.failures, self.drop_after = prefix, True, 0, 0
        self.requests, self.bytes_sent = [], 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture()
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def fetch(server, dest, **kwargs):
    kwargs = {"expected_md5": MD5, "retries": 2, "backoff": 0.0, "timeout": 10, "progress": False, **kwargs}
    return download_file(f"{server.base}/resources/12/dev-clean.tar.gz", dest, **kwargs)


def test_fresh_download(server, tmp_path):
    dest = tmp_path / "dev-clean.tar.gz"
    assert fetch(server, dest) == dest
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "dev-clean.tar.gz.part").exists()
    assert server.requests == [("/resources/12/dev-clean.tar.gz", None)]


def test_resumes_a_partial_download_with_range(server, tmp_path):
    dest = tmp_path / "dev-clean.tar.gz"
    (tmp_path / "dev-clean.tar.gz.part").write_bytes(PAYLOAD[:123_456])
    fetch(server, dest)
    assert server.requests == [("/resources/12/dev-clean.tar.gz", "bytes=123456-")]
    assert server.bytes_sent == len(PAYLOAD) - 123_456
    assert md5sum(dest) == MD5


def test_a_broken_connection_is_resumed_on_retry(server, tmp_path):
    server.drop_after = 100_000
    fetch(server, tmp_path / "dev-clean.tar.gz")
    assert server.requests == [("/resources/12/dev-clean.tar.gz", None),
                               ("/resources/12/dev-clean.tar.gz", "bytes=100000-")]
    assert server.bytes_sent == len(PAYLOAD) and md5sum(tmp_path / "dev-clean.tar.gz") == MD5


def test_restarts_when_the_server_ignores_range(server, tmp_path):
    server.ranges = False
    (tmp_path / "dev-clean.tar.gz.part").write_bytes(b"x" * 5000)  # would corrupt the file if appended to
    fetch(server, tmp_path / "dev-clean.tar.gz")
    assert (tmp_path / "dev-clean.tar.gz").read_bytes() == PAYLOAD


def test_complete_part_file_is_verified_and_kept(server, tmp_path):
    (tmp_path / "dev-clean.tar.gz.part").write_bytes(PAYLOAD)  # the server answers 416: nothing left
    fetch(server, tmp_path / "dev-clean.tar.gz")
    assert (tmp_path / "dev-clean.tar.gz").read_bytes() == PAYLOAD and server.bytes_sent == 0


def test_md5_mismatch_is_an_error_and_leaves_no_file(server, tmp_path):
    dest = tmp_path / "dev-clean.tar.gz"
    with pytest.raises(ChecksumError, match=f"md5 {MD5} does not match the expected 0123456789abcdef"):
        fetch(server, dest, expected_md5="0123456789abcdef0123456789abcdef")
    assert not dest.exists() and not (tmp_path / "dev-clean.tar.gz.part").exists()


def test_existing_file_with_right_md5_is_not_downloaded_again(server, tmp_path):
    (tmp_path / "dev-clean.tar.gz").write_bytes(PAYLOAD)
    fetch(server, tmp_path / "dev-clean.tar.gz")
    assert server.requests == []


def test_retries_after_server_errors(server, tmp_path):
    server.failures = 1
    fetch(server, tmp_path / "dev-clean.tar.gz")
    assert len(server.requests) == 2 and (tmp_path / "dev-clean.tar.gz").read_bytes() == PAYLOAD


def test_gives_up_after_retries_keeping_the_part_file(server, tmp_path):
    server.failures = 10
    with pytest.raises(DownloadError, match=r"attempt 2\): HTTP Error 503"):
        fetch(server, tmp_path / "dev-clean.tar.gz")
    assert len(server.requests) == 2


def test_falls_back_to_the_next_mirror_and_checks_the_official_md5(server, tmp_path, monkeypatch):
    monkeypatch.setitem(download.LIBRISPEECH_MD5, "dev-clean.tar.gz", MD5)
    mirrors = [f"{server.base}/missing", f"{server.base}/resources/12/"]
    paths = download_librispeech(["dev-clean.tar.gz"], tmp_path, mirrors, retries=3, backoff=0.0, progress=False)
    assert paths == [tmp_path / "dev-clean.tar.gz"] and paths[0].read_bytes() == PAYLOAD
    assert [p for p, _ in server.requests] == ["/missing/dev-clean.tar.gz", "/resources/12/dev-clean.tar.gz"]
    with pytest.raises(ValueError, match="unknown LibriSpeech archive"):
        download_librispeech(["dev-noisy.tar.gz"], tmp_path, mirrors)


def test_official_md5_table():
    assert list(download.LIBRISPEECH_MD5) == [
        "train-clean-100.tar.gz", "train-clean-360.tar.gz", "train-other-500.tar.gz",
        "dev-clean.tar.gz", "dev-other.tar.gz", "test-clean.tar.gz", "test-other.tar.gz"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in download.LIBRISPEECH_MD5.values())
    assert download.LIBRISPEECH_MD5["train-clean-100.tar.gz"] == "2a93770f6d5c6c964bc36631d331a522"
