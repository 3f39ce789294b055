"""The one-node Swift of scripts/swift-dev.sh, as the tests reach it: settings for an
S3 target under a fresh prefix, a check that fails (never skips) when Swift is down,
and the removal of a test's objects afterwards."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import urllib.request
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config

from cairn.targets.s3 import S3Settings

ENDPOINT = os.environ.get("CAIRN_S3_ENDPOINT", "http://127.0.0.1:18080")
ACCESS_KEY = os.environ.get("CAIRN_S3_ACCESS_KEY", "cairn:tester")
SECRET_KEY = os.environ.get("CAIRN_S3_SECRET_KEY", "testing")
BUCKET = "cairn-tests"


def require_swift() -> None:
    """Fail the test with the command that starts Swift when its proxy does not answer."""
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/healthcheck", timeout=5) as reply:
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


def client() -> Any:
    s3 = boto3.session.Session().client(
        "s3", endpoint_url=ENDPOINT, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                               request_checksum_calculation="when_required",
                                               response_checksum_validation="when_required"))
    s3.meta.events.register("before-sign.s3.DeleteObjects", _content_md5)
    return s3


def ensure_bucket(bucket: str = BUCKET) -> None:
    s3 = client()
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
