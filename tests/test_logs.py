"""A console that goes away (a killed tee, a closed terminal) never stops a command; the log file keeps all."""
from __future__ import annotations

import logging

from deepspeech2.core.logs import ConsoleStream, setup_logging


class _BrokenPipe:
    def write(self, _text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_console_stream_drops_writes_after_a_broken_pipe():
    stream = ConsoleStream(_BrokenPipe())
    assert stream.write("hello\n") == 6 and stream.broken
    stream.flush()


def test_logging_and_progress_bars_survive_a_dead_console(tmp_path, monkeypatch):
    from tqdm import tqdm

    monkeypatch.setattr("sys.stderr", _BrokenPipe())
    setup_logging(tmp_path / "run.log")
    try:
        for _ in tqdm(range(3), desc="steps"):      # tqdm writes to sys.stderr, now a ConsoleStream
            logging.getLogger("t").info("still logging")
    finally:
        setup_logging(None)
    assert (tmp_path / "run.log").read_text().count("still logging") == 3
