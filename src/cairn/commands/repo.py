"""`cairn repo`: operator commands on a backup repository (init, backup, restore, verify,
gc, stats, forget, list). The repository is a directory (a local disk, an NFS mount), a
prefix of an S3 bucket (`s3://BUCKET/PREFIX`), or a project's repository on a configured
backup target (`--target NAME --project ID`): see `repo_location.py`.

Output is one JSON object on stdout (machine-readable: the benchmark and scripts parse it);
errors leave through `cairn.commands.run` as a one-line message and exit status 2, and
`verify` exits 1 when it finds problems.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

import click

from cairn.commands import run
from cairn.commands.repo_location import Location, repository_location
from cairn.engine import KeyFile, Passphrase, Repository
from cairn.engine.config import DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE
from cairn.engine.crypto import KeySource
from cairn.errors import InvalidInput

PASSPHRASE_ENV = "CAIRN_REPO_PASSPHRASE"


def _emit(obj: Any) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    click.echo(json.dumps(obj, sort_keys=True))


def _key_source(passphrase_file: str | None, key_file: str | None,
                configured: KeySource | None = None) -> KeySource | None:
    """The key the options give, else $CAIRN_REPO_PASSPHRASE, else the configured target's."""
    if passphrase_file and key_file:
        raise InvalidInput("give --passphrase-file or --key-file, not both", "key")
    if key_file:
        return KeyFile(key_file)
    if passphrase_file:
        with open(passphrase_file, encoding="utf-8") as handle:
            return Passphrase(handle.read().rstrip("\n"))
    env = os.environ.get(PASSPHRASE_ENV)
    return Passphrase(env) if env else configured


def _open(where: Location, passphrase_file: str | None, key_file: str | None) -> Repository:
    return Repository.open(where.store, key=_key_source(passphrase_file, key_file, where.configured_key))


def key_options(fn: Any) -> Any:
    fn = click.option("--key-file", type=click.Path(exists=True, dir_okay=False),
                      help="File whose content is the repository secret.")(fn)
    fn = click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False),
                      help=f"File holding the passphrase (else ${PASSPHRASE_ENV}).")(fn)
    return fn


@click.group()
def repo() -> None:
    """Operate on a backup repository: REPOSITORY is a directory or s3://BUCKET/PREFIX
    (endpoint from --endpoint or $AWS_ENDPOINT_URL, keys from $AWS_ACCESS_KEY_ID and
    $AWS_SECRET_ACCESS_KEY), or give --target NAME --project ID for a project's
    repository on a configured backup target."""


@repo.command("init")
@repository_location(creating=True)
@click.option("--encrypt", is_flag=True, help="Encrypt chunks (AES-256-GCM); needs a passphrase or key file.")
@key_options
@click.option("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, show_default=True)
@click.option("--pack-size", type=int, default=DEFAULT_PACK_SIZE, show_default=True)
def init_cmd(where: Location, encrypt: bool, passphrase_file: str | None, key_file: str | None,
             chunk_size: int, pack_size: int) -> None:
    """Create a repository at REPOSITORY (or the project's on --target)."""
    key = _key_source(passphrase_file, key_file, where.configured_key)
    if where.configured_key is not None and key is where.configured_key:
        encrypt = True  # as the service creates its repositories on a target with a passphrase file
    if encrypt and key is None:
        raise InvalidInput(f"--encrypt needs --passphrase-file, --key-file or ${PASSPHRASE_ENV}", "key")
    made = Repository.init(where.store, encryption=key if encrypt else None,
                           chunk_size=chunk_size, pack_size=pack_size)
    _emit({"path": where.name, "encrypted": made.config.encrypted,
           "chunk_size": chunk_size, "pack_size": pack_size, "repo_id": made.config.repo_id.hex()})


@repo.command("backup")
@repository_location()
@click.option("--disk", required=True, type=click.Path(exists=True), help="Raw or qcow2 file, or block device.")
@click.option("--name", required=True, help="Manifest key, e.g. workload/snapshot/instance/disk.")
@click.option("--parent", default=None, help="Manifest key of the previous backup of this disk.")
@click.option("--changed-ranges", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file [[offset, length], ...] of ranges written since --parent.")
@key_options
def backup_cmd(where: Location, disk: str, name: str, parent: str | None, changed_ranges: str | None,
               passphrase_file: str | None, key_file: str | None) -> None:
    """Back up DISK into the repository as manifest NAME."""
    ranges = None
    if changed_ranges:
        try:
            with open(changed_ranges, encoding="utf-8") as handle:
                ranges = [(int(off), int(length)) for off, length in json.load(handle)]
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"--changed-ranges must be a JSON list of [offset, length]: {exc}",
                               "changed_ranges") from None
    repository = _open(where, passphrase_file, key_file)
    _emit(repository.backup(disk, name, parent_key=parent, changed_ranges=ranges))


@repo.command("restore")
@repository_location()
@click.option("--name", required=True)
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["raw", "qcow2"]), default="raw", show_default=True)
@click.option("--in-place", "inplace", is_flag=True,
              help="OUTPUT is the disk itself: write only the chunks that differ from what it holds.")
@key_options
def restore_cmd(where: Location, name: str, output: str, fmt: str, inplace: bool, passphrase_file: str | None,
                key_file: str | None) -> None:
    """Restore manifest NAME to OUTPUT."""
    repository = _open(where, passphrase_file, key_file)
    result = repository.restore(name, output, format=fmt, inplace=inplace)
    _emit({"name": name, "output": os.path.abspath(output), "format": fmt} | dataclasses.asdict(result))


@repo.command("verify")
@repository_location()
@click.option("--deep", is_flag=True, help="Read and re-hash every chunk.")
@key_options
def verify_cmd(where: Location, deep: bool, passphrase_file: str | None, key_file: str | None) -> None:
    """Check the repository; exit status 1 when problems are found."""
    report = _open(where, passphrase_file, key_file).verify(deep=deep)
    _emit(report)
    if not report.ok:
        for problem in report.problems:
            needed = ", ".join(problem.manifests) or "no manifest"
            click.echo(f"{problem.kind}: {problem.message} (needed by {needed})", err=True)
        sys.exit(1)


@repo.command("gc")
@repository_location()
@key_options
def gc_cmd(where: Location, passphrase_file: str | None, key_file: str | None) -> None:
    """Delete and repack what no manifest needs."""
    _emit(_open(where, passphrase_file, key_file).gc())


@repo.command("stats")
@repository_location()
@key_options
def stats_cmd(where: Location, passphrase_file: str | None, key_file: str | None) -> None:
    """Print sizes and counts."""
    stats = _open(where, passphrase_file, key_file).stats()
    out = dataclasses.asdict(stats)
    out["dedup_ratio"] = round(stats.dedup_ratio, 4)
    _emit(out)


@repo.command("forget")
@repository_location()
@click.option("--name", required=True)
@key_options
def forget_cmd(where: Location, name: str, passphrase_file: str | None, key_file: str | None) -> None:
    """Delete manifest NAME (run gc to free its chunks)."""
    _open(where, passphrase_file, key_file).delete_manifest(name)
    _emit({"forgotten": name})


@repo.command("list")
@repository_location()
@key_options
def list_cmd(where: Location, passphrase_file: str | None, key_file: str | None) -> None:
    """List manifest keys."""
    _emit({"manifests": _open(where, passphrase_file, key_file).list_manifests()})


def main() -> None:
    """`python -m cairn.commands.repo ARGS` is `cairn repo ARGS`, with the same error handling."""
    run(repo)


if __name__ == "__main__":
    main()
