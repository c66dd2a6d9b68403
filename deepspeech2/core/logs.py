"""Logging set up once per command: console + optional file, with time, level and file:line."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

__all__ = ["setup_logging", "LOG_FORMAT", "ConsoleStream"]

LOG_FORMAT = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s"
_OWN_HANDLER = "_ds2_handler"


class ConsoleStream:
    """A text stream that drops writes once its console is gone (a killed ``tee``, a closed terminal)
    instead of raising ``BrokenPipeError``: losing the console must not stop a run before it saves."""

    def __init__(self, stream):
        self.stream, self.broken = stream, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except (OSError, ValueError):   # broken pipe, closed file
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self.broken = True

    def __getattr__(self, name: str):       # isatty, encoding, fileno, ... of the real stream
        return getattr(self.stream, name)


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Configure the root logger: console always, plus ``log_file`` (appended) when given.

    Calling it again replaces this module's handlers instead of duplicating them. ``sys.stderr``
    (the console handler's and tqdm's stream) becomes a :class:`ConsoleStream`.
    """
    if not isinstance(sys.stderr, ConsoleStream):
        sys.stderr = ConsoleStream(sys.stderr)
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, _OWN_HANDLER, False):
            root.removeHandler(handler)
            handler.close()
    formatter = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _OWN_HANDLER, True)
        root.addHandler(handler)
    return root
