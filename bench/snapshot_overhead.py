"""What the service costs around the data engine: one full snapshot of the benchmark disk
taken through the HTTP API, beside the same backup by the engine alone.

    .venv/bin/python bench/snapshot_overhead.py [--size 4G] [--workdir /var/tmp/cairn-bench]

Both sides run as their own process on the same cached disk image (the one
`bench/engine.py` builds: ext4 filled with this machine's /usr), into fresh
repositories, with the page cache dropped before each when running as root. The API
side is `cairn serve` (SQLite, the in-process job pool) driven over a real socket:
register the instance, create the workload, wait for `available`, then time from
`POST /workloads/{id}` to the snapshot being `available`. The engine side is
`cairn repo backup` of the same disk. Overhead = API time / engine time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.disk_image import build_image, format_size, parse_size  # noqa: E402

CAIRN = str(Path(sys.executable).with_name("cairn"))


def drop_caches() -> str:
    if os.geteuid() != 0:
        return "warm (not root: page cache kept)"
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    return "cold (page cache dropped before each step)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def engine_alone(disk: Path, workdir: Path) -> float:
    repo = workdir / "engine-repo"
    shutil.rmtree(repo, ignore_errors=True)
    subprocess.run([CAIRN, "repo", "init", str(repo)], check=True, capture_output=True)
    drop_caches()
    started = time.perf_counter()
    subprocess.run([CAIRN, "repo", "backup", str(repo), "--disk", str(disk), "--name", "w/s/i/0"],
                   check=True, capture_output=True)
    return time.perf_counter() - started


def through_api(disk: Path, workdir: Path) -> tuple[float, dict[str, object]]:
    data = workdir / "api-data"
    shutil.rmtree(data, ignore_errors=True)
    env = {**os.environ, "CAIRN_DATA_DIR": str(data), "CAIRN_LOG_LEVEL": "WARNING"}
    run = lambda *args: subprocess.run([CAIRN, *args], check=True, capture_output=True, text=True,  # noqa: E731
                                       env=env).stdout.strip()
    token = run("token", "create", "--project", "bench", "--user", "bench")
    instance = run("instance", "add", "--project", "bench", "--name", "usr", "--disk", str(disk))
    port = free_port()
    server = subprocess.Popen([CAIRN, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1/bench"
    try:
        with httpx.Client(headers={"X-Auth-Token": token}, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get(f"{base}/workloads")
                    break
                except httpx.ConnectError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            workload = client.post(f"{base}/workloads", json={"workload": {
                "name": "bench", "instances": [{"instance-id": instance}]}}).json()["workload"]["id"]
            while client.get(f"{base}/workloads/{workload}").json()["workload"]["status"] != "available":
                time.sleep(0.05)
            drop_caches()
            started = time.perf_counter()
            snapshot = client.post(f"{base}/workloads/{workload}").json()["snapshot"]["id"]
            while True:
                body = client.get(f"{base}/snapshots/{snapshot}").json()["snapshot"]
                if body["status"] in ("available", "error"):
                    break
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            if body["status"] != "available":
                raise SystemExit(f"the snapshot failed: {body['error_msg']}")
            return elapsed, body
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4G")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/cairn-bench"))
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    image = build_image(workdir, parse_size(args.size))
    overhead_dir = workdir / "overhead"
    overhead_dir.mkdir(parents=True, exist_ok=True)
    cache = drop_caches()
    engine_seconds = engine_alone(image.path, overhead_dir)
    api_seconds, snapshot = through_api(image.path, overhead_dir)
    print(f"disk: {format_size(image.size)} sparse ext4 image, {image.data_bytes / 2**20:.0f} MiB of "
          f"/usr files; nproc {os.cpu_count()}; cache {cache}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'engine alone (cairn repo backup)':<40} {engine_seconds:8.2f} s")
    print(f"{'through the API (POST → available)':<40} {api_seconds:8.2f} s")
    print(f"{'service overhead':<40} {api_seconds - engine_seconds:8.2f} s  "
          f"({api_seconds / engine_seconds:.2f}x the engine alone)")
    print(json.dumps({"engine_seconds": round(engine_seconds, 3), "api_seconds": round(api_seconds, 3),
                      "snapshot_size": snapshot["size"], "restore_size": snapshot["restore_size"]}))


if __name__ == "__main__":
    main()
