"""A `[target:NAME]` with `type = s3` is read from the configuration and holds the
service's layout (each project's repository and catalog) in a bucket on a real Swift."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.config import load_settings
from cairn.errors import Conflict, InvalidInput
from cairn.targets.errors import TargetNotReady
from cairn.workloads.storage import BackupTargets, RepositoryMissing
from tests import swiftdev


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cairn.conf"
    path.write_text(f"[DEFAULT]\ndata_dir = {tmp_path / 'data'}\n\n{body}")
    return path


def _s3_section(prefix: str, bucket: str = swiftdev.BUCKET, secret: str = "secret_key = testing") -> str:
    return (f"[target:s3]\ntype = s3\nendpoint = {swiftdev.ENDPOINT}\nbucket = {bucket}\nprefix = {prefix}\n"
            f"access_key = {swiftdev.ACCESS_KEY}\n{secret}\n")


@pytest.fixture
def prefix() -> Iterator[str]:
    swiftdev.require_swift()
    swiftdev.ensure_bucket()
    name = f"svc-{os.urandom(4).hex()}"
    yield name
    swiftdev.purge(name)


def test_an_s3_target_section_is_read_with_its_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "s3.secret"
    secret.write_text("testing\n")
    settings = load_settings(_config(tmp_path, _s3_section("cairn/prod", secret=f"secret_key_file = {secret}")))
    [target] = settings.targets
    assert target.type == "s3" and target.path is None and target.s3 is not None
    assert (target.s3.endpoint, target.s3.bucket, target.s3.prefix, target.s3.secret_key, target.s3.region) == \
        (swiftdev.ENDPOINT, swiftdev.BUCKET, "cairn/prod", "testing", "us-east-1")


_BASE = "[target:s3]\ntype = s3\nendpoint = http://x\nbucket = b\naccess_key = a\n"


_BASE = "[target:s3]\ntype = s3\nendpoint = http://x\nbucket = b\naccess_key = a\n"


@pytest.mark.parametrize(("body", "field"), [
    ("[target:s3]\ntype = s3\nendpoint = http://x\naccess_key = a\nsecret_key = b\n", "target:s3.bucket"),
    ("[target:s3]\ntype = s3\nendpoint = x:1\nbucket = b\naccess_key = a\nsecret_key = b\n", "target:s3.endpoint"),
    (_BASE, "target:s3.secret_key"),
    (_BASE + "secret_key = b\nsecret_key_file = /f\n", "target:s3.secret_key"),
    (_BASE + "secret_key = b\nprefix = a/../b\n", "target:s3.prefix"),
    ("[target:s3]\ntype = ftp\npath = /x\n", "target:s3.type"),
])
def test_a_bad_s3_target_section_is_refused_naming_the_option(tmp_path: Path, body: str, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(_config(tmp_path, body))
    assert info.value.field == field


def test_projects_keep_their_repository_and_catalog_under_the_buckets_prefix(tmp_path: Path, prefix: str) -> None:
    settings = load_settings(_config(tmp_path, _s3_section(prefix) + f"\n[target:nfs]\npath = {tmp_path / 'nfs'}\n"))
    targets = BackupTargets(settings.targets)
    chosen = targets.get("s3")
    assert chosen.label == f"s3://{swiftdev.BUCKET}/{prefix}" and targets.resolve(chosen.label) is chosen
    with pytest.raises(TargetNotReady, match="run `cairn target init s3`"):
        targets.repository("s3", "p1")  # nothing is written under a prefix without its marker
    marker, written = chosen.init()
    assert written and chosen.init() == (marker, False)
    assert targets.choose() is chosen, "a bucket has no size limit, so it has the most free space"
    with pytest.raises(RepositoryMissing):
        targets.repository("s3", "p1")
    repo = targets.create_repository("s3", "p1")
    assert targets.repository("s3", "p1").config.repo_id == repo.config.repo_id  # opened, not made again
    chosen.catalog("p1").put("workloads/w1/workload.json", b"{}")
    targets.create_repository("s3", "p2")
    assert chosen.projects() == ["p1", "p2"]
    names = [item["Key"] for item in swiftdev.client().list_objects_v2(Bucket=swiftdev.BUCKET,
                                                                      Prefix=f"{prefix}/")["Contents"]]
    assert f"{prefix}/cairn-target.json" in names
    assert f"{prefix}/projects/p1/repo/config" in names
    assert f"{prefix}/projects/p1/workloads/w1/workload.json" in names


def test_a_target_whose_bucket_is_missing_never_becomes_an_empty_repository(tmp_path: Path) -> None:
    swiftdev.require_swift()
    bucket = f"cairn-absent-{os.urandom(4).hex()}"
    targets = BackupTargets(load_settings(_config(tmp_path, _s3_section("x", bucket=bucket))).targets)
    assert targets.get("s3").state().state == "missing"
    with pytest.raises(TargetNotReady, match=bucket):
        targets.repository("s3", "p1")
    with pytest.raises(TargetNotReady, match=bucket):
        targets.get("s3").projects()
    with pytest.raises(Conflict, match=bucket):
        targets.get("s3").init()
