"""Reading an S3 target's keys from its secret_ref: the accepted forms, and every
refusal naming backup_target.secret_ref."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.errors import InvalidInput, Unavailable
from cairn.workloads.s3_credentials import check_reference, credentials_lookup, lookup_s3_credentials

SECRET = "https://barbican.example:9311/v1/secrets/0b1f8e35-5a9e-4c5b-9d0e-3f1e2d4c5b6a"


def test_a_file_reference_gives_the_keys_in_either_naming(tmp_path: Path) -> None:
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"access_key": "AK", "secret_key": "SK"}))
    trilio = tmp_path / "trilio.json"
    trilio.write_text(json.dumps({"s3_access_key_id": "AK2", "s3_secret_access_key": "SK2"}))
    assert lookup_s3_credentials(f"file://{ours}").secret_key == "SK"
    assert lookup_s3_credentials(f"file://{trilio}").access_key == "AK2"
    assert "SK" not in repr(lookup_s3_credentials(f"file://{ours}"))


def test_a_barbican_reference_is_read_through_the_reader_the_runtime_gives() -> None:
    asked: list[str] = []

    def reader(ref: str) -> bytes:
        asked.append(ref)
        return b'{"access_key": "AK", "secret_key": "SK"}'
    lookup = credentials_lookup(reader)
    assert lookup(SECRET).access_key == "AK"
    assert lookup("0b1f8e35-5a9e-4c5b-9d0e-3f1e2d4c5b6a").secret_key == "SK"
    # a URL and a bare uuid both reach the reader as the secret's uuid
    assert asked == ["0b1f8e35-5a9e-4c5b-9d0e-3f1e2d4c5b6a"] * 2


def test_a_key_manager_that_is_down_passes_its_unavailable_through() -> None:
    def reader(ref: str) -> bytes:
        raise Unavailable("Barbican at https://barbican.example:9311 does not answer")
    with pytest.raises(Unavailable):
        credentials_lookup(reader)(SECRET)


@pytest.mark.parametrize(("ref", "words"), [
    ("not a reference", "neither a Barbican"),
    ("https://barbican.example/v1/orders/0b1f8e35-5a9e-4c5b-9d0e-3f1e2d4c5b6a", "neither a Barbican"),
    ("file://relative/keys.json", "absolute path"),
    ("file:///nonexistent/keys.json", "cannot read"),
    (SECRET, "no key manager"),
])
def test_a_reference_that_cannot_give_keys_is_refused_naming_the_field(ref: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        lookup_s3_credentials(ref)
    assert caught.value.field == "backup_target.secret_ref" and words in caught.value.message


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"access_key": "AK"}',
                                     '{"access_key": "", "secret_key": "S"}'])
def test_a_secret_without_both_keys_is_refused(tmp_path: Path, payload: str) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(payload)
    with pytest.raises(InvalidInput) as caught:
        lookup_s3_credentials(f"file://{keys}")
    assert caught.value.field == "backup_target.secret_ref"


def test_check_reference_strips_and_keeps_accepted_forms() -> None:
    assert check_reference(f"  {SECRET} ") == SECRET
