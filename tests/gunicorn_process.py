"""A WSGI service of the tests' own (Keystone, Barbican) run under gunicorn in a process
group of its own: started, waited for until it answers, and stopped with its workers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def start_gunicorn(python: Path, workdir: Path, port: int, app: str, threads: int,
                   env: dict[str, str]) -> subprocess.Popen[bytes]:
    """gunicorn serving `app` (a module of `workdir`) on 127.0.0.1:`port`, logging to
    `workdir`/gunicorn.log. Run as `python -m gunicorn` so that it does not matter where
    the venv's scripts think their interpreter is."""
    with open(workdir / "gunicorn.log", "ab") as log:
        return subprocess.Popen(
            [str(python), "-m", "gunicorn", "--chdir", str(workdir), "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--threads", str(threads), "--timeout", "120", app],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def wait_until_answering(process: subprocess.Popen[bytes], url: str, answers: Sequence[int],
                         timeout: float, name: str, log: Path) -> None:
    """Return once `url` answers one of `answers`; stop the process and raise if it
    exits first or does not answer within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name}'s gunicorn exited with {process.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=2).status_code in answers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_process_group(process)
    raise RuntimeError(f"{name} did not answer within {timeout}s; see {log}")


def stop_process_group(process: subprocess.Popen[bytes] | None) -> None:
    """Stop gunicorn and its workers (their own process group), by force after 30 s."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
