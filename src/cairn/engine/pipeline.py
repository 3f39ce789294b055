"""Thread plumbing shared by backup and restore: bounded queues that honour a stop flag.

Every blocking put/get polls a `threading.Event` so one failing thread can stop the
others without leaving any of them blocked on a full or empty queue.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

_POLL = 0.05


class Stopped(Exception):
    """Raised inside a pipeline thread when another thread has asked everyone to stop."""


def put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise Stopped
        try:
            q.put(item, timeout=_POLL)
            return
        except queue.Full:
            continue


def get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise Stopped
        try:
            return q.get(timeout=_POLL)
        except queue.Empty:
            continue


def end(q: queue.Queue[Any], stop: threading.Event, consumers: int) -> None:
    """Tell each of `consumers` threads reading `q` that no more work comes (a None
    each); gives up quietly once the crew is stopping, as no one is reading then."""
    for _ in range(consumers):
        try:
            put(q, None, stop)
        except Stopped:
            return


class LastOut:
    """Counts down the `producers` threads feeding `q`; the last one to finish tells its
    `consumers` that no more work comes (see `end`)."""

    def __init__(self, producers: int, q: queue.Queue[Any], stop: threading.Event, consumers: int) -> None:
        self._left = producers
        self._lock = threading.Lock()
        self._q, self._stop, self._consumers = q, stop, consumers

    def done(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            end(self._q, self._stop, self._consumers)


class Crew:
    """Threads that record their first exception and stop the others."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)
        self.stop.set()

    def start(self, name: str, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except Stopped:
                pass
            except BaseException as exc:  # noqa: BLE001 - re-raised by raise_first()
                self.fail(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds for every thread to end; True if all have."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self.alive()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def raise_first(self) -> None:
        if self.errors:
            raise self.errors[0]
