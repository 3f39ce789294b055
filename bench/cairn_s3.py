"""`cairn repo init|backup|restore` for a repository in an S3 bucket, for bench/engine.py
--target s3, configured from the bench's environment, and the object counts and copies
the bench needs besides (`cairn repo REPO` also takes `s3://BUCKET/PREFIX`; this helper
produced the published figures, so the bench keeps it):

    python bench/cairn_s3.py init PREFIX
    python bench/cairn_s3.py backup PREFIX --disk FILE --name NAME [--parent NAME]
                                    [--changed-ranges FILE]
    python bench/cairn_s3.py restore PREFIX --name NAME --output FILE
    python bench/cairn_s3.py stored PREFIX      # bytes of every object under PREFIX
    python bench/cairn_s3.py copy PREFIX NEW    # a server-side copy of every object

The endpoint, keys and bucket come from CAIRN_S3_ENDPOINT, CAIRN_S3_ACCESS_KEY,
CAIRN_S3_SECRET_KEY and CAIRN_S3_BUCKET (scripts/swift-dev.sh env prints the first
three for the local Swift), the passphrase from CAIRN_REPO_PASSPHRASE. Output is the
JSON `cairn repo` prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import boto3
from botocore.config import Config

from cairn.engine import Passphrase, Repository
from cairn.targets.s3 import S3Settings, S3Target


def target(prefix: str, create_bucket: bool = False) -> S3Target:
    return S3Target(S3Settings(endpoint=os.environ["CAIRN_S3_ENDPOINT"], bucket=os.environ["CAIRN_S3_BUCKET"],
                               access_key=os.environ["CAIRN_S3_ACCESS_KEY"],
                               secret_key=os.environ["CAIRN_S3_SECRET_KEY"], prefix=prefix),
                    create_bucket=create_bucket)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=("init", "backup", "restore", "stored", "copy"))
    ap.add_argument("prefix")
    ap.add_argument("new_prefix", nargs="?")
    ap.add_argument("--changed-ranges")
    ap.add_argument("--disk")
    ap.add_argument("--name")
    ap.add_argument("--parent")
    ap.add_argument("--output")
    args = ap.parse_args(argv)
    key = Passphrase(os.environ.get("CAIRN_REPO_PASSPHRASE", ""))
    if args.command == "init":
        repo = Repository.init(target(args.prefix, create_bucket=True), encryption=key)
        out: object = {"repo_id": repo.config.repo_id.hex(), "encrypted": True}
    elif args.command in ("stored", "copy"):
        s3 = boto3.session.Session().client(
            "s3", endpoint_url=os.environ["CAIRN_S3_ENDPOINT"], aws_access_key_id=os.environ["CAIRN_S3_ACCESS_KEY"],
            aws_secret_access_key=os.environ["CAIRN_S3_SECRET_KEY"], region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}))
        bucket = os.environ["CAIRN_S3_BUCKET"]
        items = [item for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args.prefix + "/")
                 for item in page.get("Contents", ())]
        if args.command == "copy":
            for item in items:
                # One CopyObject each (packs are far below its 5 GiB limit): a managed copy
                # would check the source's ETag, which Swift's multipart objects do not keep.
                s3.copy_object(CopySource={"Bucket": bucket, "Key": item["Key"]}, Bucket=bucket,
                               Key=args.new_prefix + item["Key"][len(args.prefix):])
        out = {"stored": sum(item["Size"] for item in items), "objects": len(items)}
    else:
        repo = Repository.open(target(args.prefix), key=key)
        if args.command == "backup":
            ranges = None
            if args.changed_ranges:
                with open(args.changed_ranges, encoding="utf-8") as handle:
                    ranges = [(int(off), int(length)) for off, length in json.load(handle)]
            out = dataclasses.asdict(repo.backup(args.disk, args.name, parent_key=args.parent,
                                                 changed_ranges=ranges))
        else:
            repo.restore(args.name, args.output, format="raw")
            out = {"name": args.name, "output": os.path.abspath(args.output)}
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
