"""`S3Target`: a target that is a prefix in an S3 bucket (AWS, Ceph RGW, Swift's s3api, ...).

Objects are S3 objects named `<prefix>/<key>`. What the `Target` protocol asks maps onto
S3 like this (docs/format.md, "S3 targets", is the specification):

- `put` is one PUT: S3 publishes an object whole or not at all;
- `writer` buffers one part (16 MiB by default) and, once an object outgrows it, streams
  it as a multipart upload, so memory is bounded by one part per open writer; nothing is
  visible before `CompleteMultipartUpload`, and `abort` aborts the upload;
- `create_exclusive` is a conditional PUT (`If-None-Match: *`) where the server honours
  it, found by a probe on first use; elsewhere (OpenStack Swift's s3api answers 501) the
  claim protocol below;
- `get_range`/`read_range` are ranged GETs, `list` is a paginated ListObjectsV2,
  `free_space` is None (a bucket has no size).

Claim protocol, for a key K on a server without conditional PUTs: put a claim object
`<prefix>/.tmp-claims/K/<time ns>-<random>`, list K's claims, and create K (plain PUT)
only if no other fresh claim exists and K does not; then delete the claim. Otherwise
delete the claim, back off a random while and try again. Two creators cannot both
succeed on a store whose reads and listings see every completed write (AWS S3, Ceph,
one-node Swift): of the two listings, the later one sees the other's claim unless that
claim was deleted, and it is deleted only after K exists, which the later creator's
HEAD then sees. A claim older than `CLAIM_TTL_SECONDS` is a dead creator's and is ignored.

Buckets are never created implicitly: a missing bucket is `BucketNotFound`, naming the
endpoint and the bucket, so a mistyped bucket reads as an error and never as a new empty
repository. Only `ensure_root` of a target made with `create_bucket=True` (an explicit
init) creates one.

Every failure leaves as a `cairn.targets.errors` error: botocore's exceptions never
escape. Requests are retried by botocore (standard mode: 5xx, throttling and connection
errors, with exponential backoff and jitter).
"""

from __future__ import annotations

import errno
import json
import os
import random
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import boto3
import botocore.exceptions
import urllib3.exceptions
from botocore.config import Config

from cairn.errors import InvalidInput
from cairn.targets.base import READ_SLACK, validate_key
from cairn.targets.errors import ObjectNotFound, TargetFull, TargetIOError, TargetMissing

MIB = 1024 * 1024
#: S3's smallest part (all but the last); Swift's s3api enforces the same minimum.
MIN_PART_SIZE = 5 * MIB
#: S3 allows 10,000 parts: with 16 MiB parts an object may reach 156 GiB (packs are tens
#: of MiB, manifests of a 100 TiB disk 3.2 GiB).
DEFAULT_PART_SIZE = 16 * MIB
MAX_PARTS = 10_000
CLAIM_PREFIX = ".tmp-claims"
#: A claim this old is a dead creator's. A creator that finds its own claim older than a
#: quarter of this when it is about to PUT starts over, so a live claim is never judged
#: dead while its PUT runs (clocks of hosts sharing a target agree within the same
#: margin the lock protocol assumes, see docs/format.md section 10).
CLAIM_TTL_SECONDS = 120.0
_CLAIM_ATTEMPTS = 10
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}
_FULL = {"QuotaExceeded", "EntityTooLarge", "InsufficientStorage"}
_TRANSPORT_ERRORS = (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, OSError)


class BucketNotFound(TargetMissing):
    """The configured bucket does not exist (it is never created implicitly)."""


@dataclass(frozen=True)
class S3Settings:
    """Where an S3 target lives and how to talk to it."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    prefix: str = ""
    region: str = "us-east-1"
    part_size: int = DEFAULT_PART_SIZE
    # Enough connections for the engine's parallel pack writers and restore readers.
    max_connections: int = 32
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_attempts: int = 5
    # "auto" probes the server; "yes" trusts `If-None-Match: *`; "no" always uses claims.
    conditional_put: str = "auto"
    addressing_style: str = "path"
    list_page_size: int = 1000  # S3's maximum


    def validate(self) -> None:
        if not self.endpoint.startswith(("http://", "https://")):
            raise InvalidInput(f"S3 endpoint {self.endpoint!r} must be an http:// or https:// URL", "endpoint")
        if not self.bucket:
            raise InvalidInput("an S3 target needs a bucket", "bucket")
        if self.prefix:
            validate_key(self.prefix, "prefix")
        if not MIN_PART_SIZE <= self.part_size <= 5 * 1024 * MIB:
            raise InvalidInput(f"part_size must be between 5 MiB and 5 GiB, not {self.part_size}", "part_size")
        if self.conditional_put not in ("auto", "yes", "no"):
            raise InvalidInput(f"conditional_put must be auto, yes or no, not {self.conditional_put!r}",
                               "conditional_put")
        if not 1 <= self.list_page_size <= 1000:
            raise InvalidInput("list_page_size must be between 1 and 1000", "list_page_size")
        if self.max_connections < 1 or self.max_attempts < 1:
            raise InvalidInput("max_connections and max_attempts must be at least 1", "max_connections")


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class _MultipartWriter:
    """Buffers one part; the first full part starts a multipart upload."""

    def __init__(self, target: S3Target, key: str) -> None:
        self._target = target
        self._key = key
        self._name = target._name(key)
        self._buf = bytearray()
        self._pos = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, object]] = []
        self._closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self._closed, "writer already closed"
        view = memoryview(data).cast("B")
        size = self._target.settings.part_size
        while view:
            take = min(len(view), size - len(self._buf))
            self._buf += view[:take]
            view = view[take:]
            self._pos += take
            if len(self._buf) == size:
                self._upload_part()

    def tell(self) -> int:
        return self._pos

    def _upload_part(self) -> None:
        t = self._target
        with t._errors(f"writing {self._key}"):
            if self._upload_id is None:
                self._upload_id = t._client.create_multipart_upload(Bucket=t.bucket, Key=self._name)["UploadId"]
            number = len(self._parts) + 1
            if number > MAX_PARTS:
                raise TargetFull(f"writing {self._key}: larger than {MAX_PARTS} parts of "
                                 f"{t.settings.part_size} bytes; raise part_size")
            # The buffer itself is the body (botocore takes a bytearray): no copy per part.
            reply = t._client.upload_part(Bucket=t.bucket, Key=self._name, UploadId=self._upload_id,
                                          PartNumber=number, Body=self._buf)
        self._parts.append({"PartNumber": number, "ETag": reply["ETag"]})
        self._buf = bytearray()

    def commit(self) -> None:
        assert not self._closed, "writer already closed"
        t = self._target
        try:
            if self._upload_id is None:
                with t._errors(f"publishing {self._key}"):
                    t._client.put_object(Bucket=t.bucket, Key=self._name, Body=self._buf)
            else:
                if self._buf or not self._parts:
                    self._upload_part()
                with t._errors(f"publishing {self._key}"):
                    t._client.complete_multipart_upload(Bucket=t.bucket, Key=self._name, UploadId=self._upload_id,
                                                        MultipartUpload={"Parts": self._parts})
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._buf = bytearray()

    def abort(self) -> None:
        self._closed = True
        self._buf = bytearray()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            try:
                self._target._client.abort_multipart_upload(Bucket=self._target.bucket, Key=self._name,
                                                            UploadId=upload_id)
            except (botocore.exceptions.ClientError, *_TRANSPORT_ERRORS):
                pass  # an unfinished upload is garbage either way; GC aborts it


class S3Target:
    """A target in `settings.bucket` under `settings.prefix`."""

    def __init__(self, settings: S3Settings, *, create_bucket: bool = False) -> None:
        settings.validate()
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = validate_key(settings.prefix, "prefix") if settings.prefix else ""
        self.create_bucket = create_bucket
        config = Config(
            region_name=settings.region,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            retries={"mode": "standard", "max_attempts": settings.max_attempts},
            max_pool_connections=settings.max_connections,
            s3={"addressing_style": settings.addressing_style},
            # Checksums only where S3 requires them: the engine checks every object it reads,
            # and older servers (Swift 2.30's s3api among them) refuse the trailing checksums
            # botocore would otherwise stream.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()
        self._client = session.client("s3", endpoint_url=settings.endpoint,
                                      aws_access_key_id=settings.access_key,
                                      aws_secret_access_key=settings.secret_key, config=config)
        self._bucket_checked = False
        self._conditional: bool | None = {"yes": True, "no": False}.get(settings.conditional_put)

    def within(self, sub: str) -> S3Target:
        """The target under `<prefix>/<sub>`, sharing this one's connections (the
        service keeps one repository per project under one bucket)."""
        validate_key(sub, "prefix")
        child = object.__new__(S3Target)
        child.__dict__.update(self.__dict__)
        child.prefix = f"{self.prefix}/{sub}" if self.prefix else sub
        child.settings = replace(self.settings, prefix=child.prefix)
        return child

    def folders(self, prefix: str) -> list[str]:
        """The names of the folders directly under `prefix` (S3's common prefixes)."""
        folder = self._folder(prefix)
        self._require_bucket()
        found = []
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors(f"listing folders of {prefix}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=folder, Delimiter="/"):
                for item in page.get("CommonPrefixes", ()):
                    name = item["Prefix"][len(folder):].rstrip("/")
                    if name and not name.startswith(".tmp-"):
                        found.append(name)
        return sorted(found)

    # -- naming and errors -------------------------------------------------------------

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        return f"{where} at {self.settings.endpoint}"

    def _name(self, key: str) -> str:
        key = validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _folder(self, prefix: str) -> str:
        return self._name(prefix) + "/"

    def _relative(self, name: str) -> str:
        return name[len(self.prefix) + 1:] if self.prefix else name

    def _missing_bucket(self) -> BucketNotFound:
        return BucketNotFound(f"bucket {self.bucket!r} does not exist at {self.settings.endpoint}; "
                              f"create it, or initialise the repository with bucket creation allowed",
                              errno.ENOENT)

    @contextmanager
    def _errors(self, what: str, key: str | None = None) -> Iterator[None]:
        """Map every botocore/urllib3 failure inside the block onto a target error."""
        try:
            yield
        except botocore.exceptions.ClientError as exc:
            raise self._map_client_error(exc, what, key) from exc
        except _TRANSPORT_ERRORS as exc:
            raise TargetIOError(f"{what}: cannot talk to {self.settings.endpoint}: {exc}", errno.EIO) from exc

    def _map_client_error(self, exc: botocore.exceptions.ClientError, what: str,
                          key: str | None) -> Exception:
        code, status = _code(exc), _status(exc)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code == "NoSuchBucket":
            return self._missing_bucket()
        if key is not None and (code in _NOT_FOUND or status == 404):
            # A HEAD's 404 carries no body: a missing bucket looks like a missing key.
            if not self._bucket_checked and not self._bucket_exists():
                return self._missing_bucket()
            return ObjectNotFound(f"{what}: object {key!r} does not exist", key)
        if code in _DENIED or status == 403:
            return TargetIOError(f"{what}: {self.describe()} refused the credentials or the request "
                                 f"({code}: {message})", errno.EACCES)
        if code in _FULL or status == 507:
            return TargetFull(f"{what}: the backup target is full ({code}: {message})", errno.ENOSPC)
        return TargetIOError(f"{what}: {self.describe()} answered {status} {code}: {message}", errno.EIO)

    def _bucket_exists(self) -> bool:
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return True
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404 or _code(exc) in ("NoSuchBucket", "404", "NotFound"):
                return False
            raise self._map_client_error(exc, f"checking bucket {self.bucket}", None) from exc
        except _TRANSPORT_ERRORS as exc:
            raise TargetIOError(f"checking bucket {self.bucket}: cannot talk to {self.settings.endpoint}: {exc}",
                                errno.EIO) from exc

    def _require_bucket(self) -> None:
        """Check once that the bucket exists, so `exists()` never answers for a missing one."""
        if self._bucket_checked:
            return
        if not self._bucket_exists():
            raise self._missing_bucket()
        self._bucket_checked = True

    def object_lock_enabled(self) -> bool:
        """Whether the server reports S3 Object Lock enabled on the bucket (what an
        `immutable` target needs). A server without the feature (Swift's s3api answers
        NotImplemented) or a bucket without a lock configuration answers False."""
        self._require_bucket()
        try:
            reply = self._client.get_object_lock_configuration(Bucket=self.bucket)
        except botocore.exceptions.ClientError:
            return False
        except _TRANSPORT_ERRORS as exc:
            raise TargetIOError(f"asking bucket {self.bucket} for its object lock: cannot talk to "
                                f"{self.settings.endpoint}: {exc}", errno.EIO) from exc
        configuration = reply.get("ObjectLockConfiguration") or {}
        return configuration.get("ObjectLockEnabled") == "Enabled"

    def ensure_root(self) -> None:
        """Make sure the bucket exists: create it only when this target may (an init)."""
        if self._bucket_exists():
            self._bucket_checked = True
            return
        if not self.create_bucket:
            raise self._missing_bucket()
        with self._errors(f"creating bucket {self.bucket}"):
            try:
                self._client.create_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._bucket_checked = True

    # -- writing -----------------------------------------------------------------------

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        name = self._name(key)
        self._require_bucket()
        body = data if isinstance(data, (bytes, bytearray)) else bytes(data)
        if len(body) > self.settings.part_size:
            writer = self.writer(key)
            writer.write(body)
            writer.commit()
            return
        with self._errors(f"writing {key}"):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=body)

    def writer(self, key: str) -> _MultipartWriter:
        self._name(key)
        self._require_bucket()
        return _MultipartWriter(self, key)

    def uses_conditional_put(self) -> bool:
        """Whether `create_exclusive` relies on `If-None-Match: *` (probing on first call)."""
        if self._conditional is None:
            self._require_bucket()
            self._conditional = self._probe_conditional_put()
        return self._conditional

    def create_exclusive(self, key: str, data: bytes) -> bool:
        name = self._name(key)
        self._require_bucket()
        if self.uses_conditional_put():
            return self._create_conditional(key, name, data)
        return self._create_with_claim(key, name, data)

    def _create_conditional(self, key: str, name: str, data: bytes) -> bool:
        for attempt in range(_CLAIM_ATTEMPTS):
            with self._errors(f"creating {key}"):
                try:
                    self._client.put_object(Bucket=self.bucket, Key=name, Body=data, IfNoneMatch="*")
                    return True
                except botocore.exceptions.ClientError as exc:
                    if _status(exc) == 412 or _code(exc) == "PreconditionFailed":
                        return False
                    if _status(exc) != 409:  # 409: a concurrent conditional write; try again
                        raise
            time.sleep(random.uniform(0.05, 0.1) * 2 ** min(attempt, 5))
        raise TargetIOError(f"creating {key}: concurrent writers kept conflicting", errno.EBUSY)

    def _probe_conditional_put(self) -> bool:
        """Does the server refuse `If-None-Match: *` over an existing object? A server
        that ignores the header would silently overwrite, so only a 412 counts as yes."""
        probe = f"{self._claim_folder('')}probe-{secrets.token_hex(8)}"
        with self._errors("probing conditional PUT support"):
            self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
            try:
                self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"", IfNoneMatch="*")
                honoured = False
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == 412 or _code(exc) == "PreconditionFailed":
                    honoured = True
                elif _status(exc) in (400, 501) or _code(exc) in ("NotImplemented", "InvalidArgument"):
                    honoured = False
                else:
                    raise
            finally:
                self._client.delete_object(Bucket=self.bucket, Key=probe)
        return honoured

    def _claim_folder(self, name: str) -> str:
        """`<prefix>/.tmp-claims/<key>/`: no published key can start with it."""
        rel = self._relative(name) + "/" if name else ""
        return f"{self.prefix}/{CLAIM_PREFIX}/{rel}" if self.prefix else f"{CLAIM_PREFIX}/{rel}"

    def _create_with_claim(self, key: str, name: str, data: bytes) -> bool:
        folder = self._claim_folder(name)
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
        for attempt in range(_CLAIM_ATTEMPTS):
            if self.exists(key):
                return False
            claimed_at = time.monotonic()
            claim = f"{folder}{time.time_ns():020d}-{secrets.token_hex(8)}"
            with self._errors(f"claiming {key}"):
                self._client.put_object(Bucket=self.bucket, Key=claim, Body=body)
            in_doubt = False
            try:
                rivals = self._fresh_claims(folder, claim)
                if not rivals:
                    if self.exists(key):
                        return False
                    if time.monotonic() - claimed_at < CLAIM_TTL_SECONDS / 4:
                        in_doubt = True
                        with self._errors(f"creating {key}"):
                            self._client.put_object(Bucket=self.bucket, Key=name, Body=data)
                        in_doubt = False
                        return True
            finally:
                # A PUT that failed may still land (a timeout the server did not see):
                # the claim then stays until it is dead, keeping other writers out.
                if not in_doubt:
                    with self._errors(f"releasing the claim on {key}"):
                        self._client.delete_object(Bucket=self.bucket, Key=claim)
            time.sleep(random.uniform(0.02, 0.1) * 2 ** min(attempt, 5))
        raise TargetIOError(f"creating {key}: other writers kept claiming it", errno.EBUSY)

    def _fresh_claims(self, folder: str, own: str) -> list[str]:
        """Other claims in `folder` younger than the TTL; dead ones are deleted."""
        now = time.time_ns()
        rivals = []
        for name in self._list_names(folder, f"listing claims in {folder}"):
            if name == own:
                continue
            stamp = name[len(folder):].split("-", 1)[0]
            age = (now - int(stamp)) / 1e9 if stamp.isdigit() else CLAIM_TTL_SECONDS + 1
            if age > CLAIM_TTL_SECONDS or self._claimant_died(name):
                with self._errors(f"removing the dead claim {name}"):
                    self._client.delete_object(Bucket=self.bucket, Key=name)
            else:
                rivals.append(name)
        return rivals

    def _claimant_died(self, claim: str) -> bool:
        """Was `claim` made by a process of this host that no longer exists? (A killed
        GC's claim on `locks/exclusive.lock` must not keep the next one out for the TTL.)"""
        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=claim)
            owner = json.loads(reply["Body"].read())
            host, pid = str(owner["host"]), int(owner["pid"])
        except botocore.exceptions.ClientError:
            return False  # gone already, or unreadable: judged by its age alone
        except (ValueError, KeyError, TypeError, *_TRANSPORT_ERRORS):
            return False
        if host != socket.gethostname() or pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    # -- reading -----------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        name = self._name(key)
        with self._errors(f"reading {key}", key):
            reply = self._client.get_object(Bucket=self.bucket, Key=name)
            return self._read_body(reply, key)

    @staticmethod
    def _read_body(reply: dict[str, object], key: str) -> bytes:
        body = reply["Body"]
        try:
            data: bytes = body.read()  # type: ignore[attr-defined]
        finally:
            body.close()  # type: ignore[attr-defined]
        expected = reply.get("ContentLength")
        if isinstance(expected, int) and len(data) != expected:
            raise TargetIOError(f"reading {key}: got {len(data)} of {expected} bytes", errno.EIO)
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        name = self._name(key)
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        if length == 0:
            self.size(key)
            return b""
        with self._errors(f"reading {key}", key):
            try:
                reply = self._client.get_object(Bucket=self.bucket, Key=name,
                                                Range=f"bytes={offset}-{offset + length - 1}")
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "InvalidRange" or _status(exc) == 416:
                    return b""  # past the end, as a short read on a file
                raise
            return self._read_body(reply, key)

    def read_range(self, key: str, offset: int, length: int, buf: memoryview) -> memoryview:
        """Read `length` bytes of `key` from `offset` into `buf` (at least `length +
        READ_SLACK` bytes long, like every target's); the returned view is shorter only
        at the object's end. The body streams straight into `buf`: no copy per read."""
        if len(buf) < length + READ_SLACK:
            raise ValueError("read_range needs a buffer of length + READ_SLACK bytes")
        name = self._name(key)
        if length == 0:
            self.size(key)
            return buf[:0]
        with self._errors(f"reading {key}", key):
            try:
                reply = self._client.get_object(Bucket=self.bucket, Key=name,
                                                Range=f"bytes={offset}-{offset + length - 1}")
            except botocore.exceptions.ClientError as exc:
                if _code(exc) == "InvalidRange" or _status(exc) == 416:
                    return buf[:0]
                raise
            body = reply["Body"]
            expected = int(reply.get("ContentLength", length))
            try:
                done = 0
                while done < expected:
                    n = body.readinto(buf[done:expected])
                    if not n:
                        break
                    done += n
            finally:
                body.close()
            if done != expected:
                raise TargetIOError(f"reading {key}: got {done} of {expected} bytes", errno.EIO)
            return buf[:done]

    def _list_names(self, folder: str, what: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        with self._errors(what):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=folder,
                                           PaginationConfig={"PageSize": self.settings.list_page_size}):
                for item in page.get("Contents", ()):
                    yield item["Key"]

    def list(self, prefix: str) -> Iterator[str]:
        """Yield every published key under the folder `prefix`, sorted (S3 lists in
        byte order, one page of up to 1000 keys at a time)."""
        folder = self._folder(prefix)
        self._require_bucket()
        return self._list_published(folder, prefix)

    def _list_published(self, folder: str, prefix: str) -> Iterator[str]:
        for name in self._list_names(folder, f"listing {prefix}"):
            rel = self._relative(name)
            if not any(part.startswith(".tmp-") for part in rel.split("/")):
                yield rel

    def list_temporary(self, prefix: str) -> Iterator[str]:
        """Yield the unfinished multipart uploads under `prefix` as `<key>?uploadId=<id>`."""
        folder = self._folder(prefix)
        paginator = self._client.get_paginator("list_multipart_uploads")
        with self._errors(f"listing unfinished uploads in {prefix}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
                for item in page.get("Uploads", ()):
                    yield f"{self._relative(item['Key'])}?uploadId={item['UploadId']}"

    def delete_temporary(self, rel: str) -> None:
        key, sep, upload_id = rel.partition("?uploadId=")
        if not sep or not upload_id:
            raise TargetIOError(f"refusing to delete {rel!r}: not an unfinished upload")
        name = self._name(key)
        with self._errors(f"aborting the upload of {key}"):
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "NoSuchUpload" and _status(exc) != 404:
                    raise

    def delete(self, key: str) -> None:
        name = self._name(key)
        self._require_bucket()
        with self._errors(f"deleting {key}"):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except ObjectNotFound:
            return False

    def size(self, key: str) -> int:
        name = self._name(key)
        self._require_bucket()
        with self._errors(f"stat {key}", key):
            return int(self._client.head_object(Bucket=self.bucket, Key=name)["ContentLength"])

    def free_space(self) -> int | None:
        return None

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()
