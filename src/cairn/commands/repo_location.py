"""Where a `cairn repo` command finds its repository, and the options that say so.

Three ways, one per command line (docs/deployment.md, "Operating on a repository"):

- `PATH`: a directory (a local disk, an NFS mount);
- `s3://BUCKET[/PREFIX]`: a prefix of a bucket, at the endpoint `--endpoint` (else
  `$AWS_ENDPOINT_URL`), signed with `$AWS_ACCESS_KEY_ID` and `$AWS_SECRET_ACCESS_KEY`
  (the variables every S3 tool reads, so a secret never sits on a command line) in the
  region `--region` (else `$AWS_DEFAULT_REGION`, else us-east-1);
- `--target NAME --project ID`: the project's repository on the configured backup target
  NAME, a directory or a bucket, with the credentials and the passphrase file of its
  `[target:NAME]` section; the target's marker is checked first, as the service does.

A bucket is never created, except by `cairn repo init s3://... --create-bucket`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from cairn.commands import settings_from
from cairn.engine import KeyFile
from cairn.engine.crypto import KeySource
from cairn.errors import InvalidInput
from cairn.targets import FilesystemTarget, Target

S3_SCHEME = "s3://"


@dataclass(frozen=True)
class Location:
    """A repository's store, what messages call it, and the key its configuration gives
    (a configured target's passphrase file; None elsewhere)."""

    store: Target
    name: str
    configured_key: KeySource | None = None


def repository_location(creating: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command REPOSITORY (optional when --target is given) and the options naming
    a bucket or a configured target; the command receives the resolved `where: Location`.
    A command that `creating` a repository also takes --create-bucket."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        @click.pass_context
        def resolved(ctx: click.Context, /, repository: str | None, target_name: str | None, project: str | None,
                     endpoint: str | None, region: str | None, create_bucket: bool = False,
                     **options: Any) -> Any:
            where = resolve(ctx, repository, target_name, project, endpoint, region, creating=creating,
                            create_bucket=create_bucket)
            return command(where=where, **options)

        fn: Callable[..., Any] = resolved
        if creating:
            fn = click.option("--create-bucket", is_flag=True,
                              help="Create the bucket of an s3:// REPOSITORY if it is missing.")(fn)
        fn = click.option("--region", default=None,
                          help="S3 region (else $AWS_DEFAULT_REGION, else us-east-1).")(fn)
        fn = click.option("--endpoint", default=None,
                          help="S3 endpoint URL for an s3:// REPOSITORY (else $AWS_ENDPOINT_URL).")(fn)
        fn = click.option("--project", default=None, help="With --target: the project whose repository it is.")(fn)
        fn = click.option("--target", "target_name", default=None,
                          help="A configured backup target (instead of REPOSITORY).")(fn)
        return click.argument("repository", required=False)(fn)
    return decorate


def resolve(ctx: click.Context, repository: str | None, target_name: str | None, project: str | None,
            endpoint: str | None, region: str | None, *, creating: bool = False,
            create_bucket: bool = False) -> Location:
    """The store the options name; `InvalidInput` naming the option when they do not
    name exactly one, or an S3 repository lacks its endpoint or keys."""
    if (repository is None) == (target_name is None):
        raise InvalidInput("give a REPOSITORY (a path or s3://BUCKET/PREFIX) or --target NAME --project ID, "
                           "not both and not neither", "repository")
    if target_name is not None:
        if not project:
            raise InvalidInput("--target needs --project: a target holds one repository per project", "project")
        if endpoint or region or create_bucket:
            raise InvalidInput("--endpoint, --region and --create-bucket are for an s3:// REPOSITORY; a "
                               "configured target takes them from its [target:NAME] section", "target")
        return _configured(ctx, target_name, project)
    if project:
        raise InvalidInput("--project goes with --target", "project")
    assert repository is not None
    if repository.startswith(S3_SCHEME):
        return _bucket(repository, endpoint, region, create_bucket)
    if endpoint or region or create_bucket:
        raise InvalidInput("--endpoint, --region and --create-bucket are for an s3:// REPOSITORY", "endpoint")
    if not creating and not os.path.isdir(repository):
        raise InvalidInput(f"REPOSITORY: {repository} is not a directory", "repository")
    return Location(FilesystemTarget(repository), os.path.abspath(repository))


def _configured(ctx: click.Context, target_name: str, project: str) -> Location:
    from cairn.workloads.storage import BackupTargets

    target = BackupTargets(settings_from(ctx).backup_targets).get(target_name)
    store = target.repository_target(project)  # checks the target's marker first
    key = KeyFile(str(target.passphrase_file)) if target.passphrase_file else None
    return Location(store, store.describe(), key)


def _bucket(url: str, endpoint: str | None, region: str | None, create_bucket: bool) -> Location:
    # boto3 costs a third of a second to import: only S3 repositories pay.
    from cairn.targets.s3 import S3Settings, S3Target

    bucket, _, prefix = url[len(S3_SCHEME):].partition("/")
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise InvalidInput(f"{url}: give the S3 endpoint with --endpoint or $AWS_ENDPOINT_URL", "endpoint")
    keys = {}
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        keys[variable] = os.environ.get(variable, "")
        if not keys[variable]:
            raise InvalidInput(f"{url}: set ${variable} (S3 credentials come from the environment)", variable)
    settings = S3Settings(endpoint=endpoint, bucket=bucket, prefix=prefix.strip("/"),
                          access_key=keys["AWS_ACCESS_KEY_ID"], secret_key=keys["AWS_SECRET_ACCESS_KEY"],
                          region=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    store = S3Target(settings, create_bucket=create_bucket)
    return Location(store, store.describe())

