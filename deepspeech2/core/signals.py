"""Stop requests for long runs: the first SIGINT/SIGTERM asks for a clean stop, a second SIGINT aborts.

MindSpore installs its own SIGINT handler while it runs a graph, and that handler turns a Ctrl-C into
a SIGTERM of the process. :func:`watch_stop_signals` therefore blocks SIGINT in the calling thread — and
so in every thread and worker process started after it — and receives it in a thread of its own with
``sigwait``, where no library handler can intercept it. SIGTERM keeps an ordinary Python handler.
Call it before numpy/MindSpore start their threads (first thing in a command's ``main``).
"""
from __future__ import annotations

import _thread
import logging
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["StopRequest", "watch_stop_signals"]

log = logging.getLogger(__name__)


class StopRequest:
    """``signum``: the first stop signal received (0 = none); the loop checkpoints and exits on it."""

    def __init__(self) -> None:
        self.signum = 0

    def handle(self, signum: int, _frame=None) -> None:
        name = signal.Signals(signum).name
        if not self.signum:
            self.signum = int(signum)
            log.warning("received %s: saving a checkpoint after this step, then exiting", name)
        elif signum == signal.SIGINT:
            log.warning("received %s again: stopping at once, without a checkpoint", name)
            _thread.interrupt_main()
        else:   # e.g. a scheduler repeating SIGTERM, or MindSpore's when its data workers end
            log.warning("received %s again: already stopping", name)


@contextmanager
def watch_stop_signals() -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a :class:`StopRequest` while the block runs."""
    request = StopRequest()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def receive_sigint() -> None:
        while True:
            request.handle(signal.sigwait({signal.SIGINT}))

    threading.Thread(target=receive_sigint, name="sigint", daemon=True).start()
    previous = signal.signal(signal.SIGTERM, request.handle)
    try:
        yield request
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
