"""The one-node Swift of scripts/swift-dev.sh, as the tests reach it: settings for an
S3 target under a fresh prefix, a check that fails (never skips) when Swift is down,
and the removal of a test's objects afterwards.

The shared Swift (started by scripts/start-services.sh) is never stopped by a test: a
test that stops and starts Swift runs a `PrivateSwift` of its own, the same script
under its own directory and free ports."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from cairn.config import S3TargetSettings, TargetSettings
from cairn.targets.s3 import S3Settings

ENDPOINT = os.environ.get("CAIRN_S3_ENDPOINT", "http://127.0.0.1:18080")
ACCESS_KEY = os.environ.get("CAIRN_S3_ACCESS_KEY", "cairn:tester")
SECRET_KEY = os.environ.get("CAIRN_S3_SECRET_KEY", "testing")
BUCKET = "cairn-tests"


SCRIPT = Path(__file__).parents[1] / "scripts" / "swift-dev.sh"


def require_swift(endpoint: str = ENDPOINT) -> None:
    """Fail the test with the command that starts Swift when its proxy does not answer."""
    try:
        with urllib.request.urlopen(f"{endpoint}/healthcheck", timeout=5) as reply:
            if reply.status == 200:
                return
    except OSError as exc:
        pytest.fail(f"Swift's S3 API does not answer at {ENDPOINT} ({exc}); run `scripts/swift-dev.sh start`")
    pytest.fail(f"Swift at {ENDPOINT} is not healthy; run `scripts/swift-dev.sh start`")


def settings(prefix: str | None = None, bucket: str = BUCKET, **overrides: object) -> S3Settings:
    """Settings for a target under a prefix no other test uses; short timeouts so a dead
    server fails a test in seconds."""
    base = S3Settings(endpoint=ENDPOINT, bucket=bucket, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                      prefix=prefix or f"t-{secrets.token_hex(6)}", connect_timeout=3.0, read_timeout=30.0,
                      max_attempts=3)
    return replace(base, **overrides)  # type: ignore[arg-type]


def _content_md5(request: Any, **_: Any) -> None:
    # Swift's s3api wants the Content-MD5 that S3 once required of DeleteObjects, where
    # botocore now sends a CRC32 instead.
    body = request.body if isinstance(request.body, bytes) else request.body.read()
    request.headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
    for name in [h for h in request.headers if h.lower().startswith("x-amz-checksum")]:
        del request.headers[name]


def target_settings(name: str, prefix: str, bucket: str = BUCKET, endpoint: str = ENDPOINT) -> TargetSettings:
    """A `[target:NAME]` with `type = s3` on this Swift, as the configuration reads it."""
    return TargetSettings(name=name, path=None, type="s3",
                          s3=S3TargetSettings(endpoint=endpoint, bucket=bucket, access_key=ACCESS_KEY,
                                              secret_key=SECRET_KEY, prefix=prefix))


def target_section(name: str, prefix: str, bucket: str = BUCKET, endpoint: str = ENDPOINT) -> str:
    """The same target as the text of a configuration file."""
    return (f"[target:{name}]\ntype = s3\nendpoint = {endpoint}\nbucket = {bucket}\nprefix = {prefix}\n"
            f"access_key = {ACCESS_KEY}\nsecret_key = {SECRET_KEY}\n")


def client(endpoint: str = ENDPOINT) -> Any:
    s3 = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                               request_checksum_calculation="when_required",
                                               response_checksum_validation="when_required"))
    s3.meta.events.register("before-sign.s3.DeleteObjects", _content_md5)
    return s3


def bucket_exists(bucket: str, endpoint: str = ENDPOINT) -> bool:
    try:
        client(endpoint).head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return False
        raise
    return True


def ensure_bucket(bucket: str = BUCKET, endpoint: str = ENDPOINT) -> None:
    s3 = client(endpoint)
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - any failure: try to create, which reports clearly
        s3.create_bucket(Bucket=bucket)


def purge(prefix: str, bucket: str = BUCKET) -> None:
    """Delete every object and unfinished upload under `prefix/`."""
    s3 = client()
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for upload in page.get("Uploads", ()):
            s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


class PrivateSwift:
    """A Swift of one test's own (scripts/swift-dev.sh under `directory`, on free ports),
    which the test may stop and start without touching the shared one."""

    def __init__(self, directory: Path) -> None:
        from bench.cluster import free_port

        self.directory = directory
        # The script takes three consecutive ports from the base one.
        base = free_port()
        while not all(_port_free(base + i) for i in (1, 2)):
            base = free_port()
        self.env = {**os.environ, "CAIRN_SWIFT_DIR": str(directory), "CAIRN_SWIFT_PORT": str(free_port()),
                    "CAIRN_SWIFT_TLS_PORT": str(free_port()), "CAIRN_SWIFT_BASE_PORT": str(base),
                    "CAIRN_SWIFT_MEMCACHE_PORT": str(free_port())}
        self.endpoint = f"http://127.0.0.1:{self.env['CAIRN_SWIFT_PORT']}"

    def _script(self, command: str) -> None:
        done = subprocess.run(["bash", str(SCRIPT), command], env=self.env, capture_output=True, text=True,
                              timeout=180, check=False)
        assert done.returncode == 0, f"swift-dev.sh {command}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def __enter__(self) -> PrivateSwift:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
