"""`cairn repo`: operator commands on a backup repository (init, backup, restore, verify,
gc, stats, forget, list). PATH is a directory: a local disk or an NFS mount.

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
from cairn.engine import KeyFile, Passphrase, Repository
from cairn.engine.config import DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE
from cairn.engine.crypto import KeySource
from cairn.errors import InvalidInput
from cairn.targets import FilesystemTarget

PASSPHRASE_ENV = "CAIRN_REPO_PASSPHRASE"


def _emit(obj: Any) -> None:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    click.echo(json.dumps(obj, sort_keys=True))


def _key_source(passphrase_file: str | None, key_file: str | None) -> KeySource | None:
    if passphrase_file and key_file:
        raise InvalidInput("give --passphrase-file or --key-file, not both", "key")
    if key_file:
        return KeyFile(key_file)
    if passphrase_file:
        with open(passphrase_file, encoding="utf-8") as handle:
            return Passphrase(handle.read().rstrip("\n"))
    env = os.environ.get(PASSPHRASE_ENV)
    return Passphrase(env) if env else None


def _open(path: str, passphrase_file: str | None, key_file: str | None) -> Repository:
    return Repository.open(FilesystemTarget(path), key=_key_source(passphrase_file, key_file))


def key_options(fn: Any) -> Any:
    fn = click.option("--key-file", type=click.Path(exists=True, dir_okay=False),
                      help="File whose content is the repository secret.")(fn)
    fn = click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False),
                      help=f"File holding the passphrase (else ${PASSPHRASE_ENV}).")(fn)
    return fn


@click.group()
def repo() -> None:
    """Operate on a backup repository on a target path."""


@repo.command("init")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--encrypt", is_flag=True, help="Encrypt chunks (AES-256-GCM); needs a passphrase or key file.")
@key_options
@click.option("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, show_default=True)
@click.option("--pack-size", type=int, default=DEFAULT_PACK_SIZE, show_default=True)
def init_cmd(path: str, encrypt: bool, passphrase_file: str | None, key_file: str | None, chunk_size: int,
             pack_size: int) -> None:
    """Create a repository at PATH."""
    key = _key_source(passphrase_file, key_file)
    if encrypt and key is None:
        raise InvalidInput(f"--encrypt needs --passphrase-file, --key-file or ${PASSPHRASE_ENV}", "key")
    repository = Repository.init(FilesystemTarget(path), encryption=key if encrypt else None,
                                 chunk_size=chunk_size, pack_size=pack_size)
    _emit({"path": os.path.abspath(path), "encrypted": repository.config.encrypted,
           "chunk_size": chunk_size, "pack_size": pack_size, "repo_id": repository.config.repo_id.hex()})


@repo.command("backup")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--disk", required=True, type=click.Path(exists=True), help="Raw or qcow2 file, or block device.")
@click.option("--name", required=True, help="Manifest key, e.g. workload/snapshot/instance/disk.")
@click.option("--parent", default=None, help="Manifest key of the previous backup of this disk.")
@click.option("--changed-ranges", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file [[offset, length], ...] of ranges written since --parent.")
@key_options
def backup_cmd(path: str, disk: str, name: str, parent: str | None, changed_ranges: str | None,
               passphrase_file: str | None, key_file: str | None) -> None:
    """Back up DISK into the repository at PATH as manifest NAME."""
    ranges = None
    if changed_ranges:
        try:
            with open(changed_ranges, encoding="utf-8") as handle:
                ranges = [(int(off), int(length)) for off, length in json.load(handle)]
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"--changed-ranges must be a JSON list of [offset, length]: {exc}",
                               "changed_ranges") from None
    repository = _open(path, passphrase_file, key_file)
    _emit(repository.backup(disk, name, parent_key=parent, changed_ranges=ranges))


@repo.command("restore")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True)
@click.option("--output", required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["raw", "qcow2"]), default="raw", show_default=True)
@key_options
def restore_cmd(path: str, name: str, output: str, fmt: str, passphrase_file: str | None,
                key_file: str | None) -> None:
    """Restore manifest NAME to OUTPUT."""
    repository = _open(path, passphrase_file, key_file)
    repository.restore(name, output, format=fmt)
    _emit({"name": name, "output": os.path.abspath(output), "format": fmt})


@repo.command("verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--deep", is_flag=True, help="Read and re-hash every chunk.")
@key_options
def verify_cmd(path: str, deep: bool, passphrase_file: str | None, key_file: str | None) -> None:
    """Check the repository; exit status 1 when problems are found."""
    report = _open(path, passphrase_file, key_file).verify(deep=deep)
    _emit(report)
    if not report.ok:
        for problem in report.problems:
            needed = ", ".join(problem.manifests) or "no manifest"
            click.echo(f"{problem.kind}: {problem.message} (needed by {needed})", err=True)
        sys.exit(1)


@repo.command("gc")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@key_options
def gc_cmd(path: str, passphrase_file: str | None, key_file: str | None) -> None:
    """Delete and repack what no manifest needs."""
    _emit(_open(path, passphrase_file, key_file).gc())


@repo.command("stats")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@key_options
def stats_cmd(path: str, passphrase_file: str | None, key_file: str | None) -> None:
    """Print sizes and counts."""
    stats = _open(path, passphrase_file, key_file).stats()
    out = dataclasses.asdict(stats)
    out["dedup_ratio"] = round(stats.dedup_ratio, 4)
    _emit(out)


@repo.command("forget")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True)
@key_options
def forget_cmd(path: str, name: str, passphrase_file: str | None, key_file: str | None) -> None:
    """Delete manifest NAME (run gc to free its chunks)."""
    _open(path, passphrase_file, key_file).delete_manifest(name)
    _emit({"forgotten": name})


@repo.command("list")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@key_options
def list_cmd(path: str, passphrase_file: str | None, key_file: str | None) -> None:
    """List manifest keys."""
    _emit({"manifests": _open(path, passphrase_file, key_file).list_manifests()})


def main() -> None:
    """`python -m cairn.commands.repo ARGS` is `cairn repo ARGS`, with the same error handling."""
    run(repo)


if __name__ == "__main__":
    main()
