"""Benchmark Cairn's data engine against restic and borg on a VM disk image.

    .venv/bin/python bench/engine.py [--size 4G] [--workdir DIR] [--skip-borg] [--json FILE]
                                     [--target filesystem|s3]

One run, side by side for every tool: a full backup of an ext4 disk image filled with
/usr, an incremental after 200 scattered 1 MiB random writes, and a restore of the
latest snapshot that must be bit-identical to the modified image. Then Cairn alone on a
16 GiB disk holding the same data, to show its memory does not grow with disk size.
See bench/README.md for what is measured and why; docs/benchmarks.md for the figures.

With `--target s3` the repositories of Cairn and restic are prefixes of one bucket on
the S3 endpoint of scripts/swift-dev.sh (OpenStack Swift's s3api on 127.0.0.1), borg
(which has no S3 backend) is left out, and "stored" is the sum of the objects' sizes.

Every tool runs as its own child process; its peak RSS and CPU time come from the
kernel's accounting of that child (os.wait4), not from sampling.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.disk_image import (  # noqa: E402  (run as a script: the repository root is put on the path)
    DiskImage,
    MiB,
    allocated_bytes,
    build_image,
    copy_sparse,
    format_size,
    parse_size,
    scatter_writes,
)

# One passphrase for every tool, so each pays for the same encryption work.
PASSPHRASE = "cairn-bench: not a secret"
FULL, INCR, RESTORE = "full", "incremental", "restore"
CAIRN, CAIRN_MAP, RESTIC = "cairn", "cairn+map", "restic"
CAIRN_INPLACE = "cairn-inplace"  # restore in place onto the disk as it already is
LIMIT_COPY, LIMIT_DECODE = "limit-copy", "limit-decode"  # bench/restore_limit.py
LIMIT_SCRIPT = Path(__file__).resolve().with_name("restore_limit.py")
# A restore may take at most this many times the machine's limit (the larger of
# limit-copy and limit-decode, measured in the same run).
LIMIT_RATIO = 1.5
RSS_LIMIT = 256 * MiB
# "Independent of disk size": 4x the disk may cost at most this much more memory.
RSS_GROWTH_LIMIT = 1.25


class ToolFailed(Exception):
    """A tool exited non-zero; the message names its log."""


@dataclass
class Measure:
    """What the kernel says about one finished child process."""

    wall_s: float  # the tool's run plus the `sync` after it: until its output is durable
    tool_s: float  # the tool's run alone
    cpu_s: float  # user + system, child and its reaped descendants
    rss: int  # peak resident set, bytes
    stdout: str
    others_cpu_s: float  # CPU that other processes used meanwhile: the machine's noise


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_measured(argv: list[str], env: dict[str, str], log: Path,
                 cwd: Path | None = None, capture: bool = False) -> Measure:
    """Run `argv` as a child, wait4() it for rusage, then sync and time that too.

    Syncing belongs to the step: restic and borg do not fsync a restored file, so
    without it a restore would "finish" with gigabytes still in the page cache.
    """
    with open(log, "ab") as logf:
        logf.write(f"$ {' '.join(argv)}\n".encode())
        logf.flush()
        busy0 = busy_cpu_s()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if capture else logf, stderr=logf)
        try:
            out = proc.stdout.read().decode() if capture and proc.stdout else ""
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: leave no tool writing into the next run's dirs
            proc.kill()
            proc.wait()
            raise
        tool_s = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        if proc.stdout:
            proc.stdout.close()
        os.sync()
        wall_s = time.perf_counter() - start
        others = busy_cpu_s() - busy0 - (usage.ru_utime + usage.ru_stime)
        if capture:
            logf.write(out.encode())
    if proc.returncode != 0:
        raise ToolFailed(f"{argv[0]} exited {proc.returncode}; see {log}")
    return Measure(wall_s, tool_s, usage.ru_utime + usage.ru_stime,
                   usage.ru_maxrss * 1024, out, max(0.0, others))


class Tool:
    """How one backup tool initialises a repository, backs up and restores a disk."""

    name: str

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.failed: str | None = None

    def warm(self) -> list[str]:
        """A no-op run that loads the tool's own program into the page cache."""
        raise NotImplementedError

    def stored_bytes(self) -> int:
        """Bytes the repository occupies now."""
        return allocated_bytes(self.repo)

    def repo_files(self) -> list[Path]:
        """Local files a restore reads (none for a repository in a bucket)."""
        return [self.repo]

    def init(self) -> list[str]:
        raise NotImplementedError

    def backup(self, disk: Path, name: str, parent: str | None,
               ranges: Path | None) -> tuple[list[str], Path | None]:
        """The command (and its working directory) that backs `disk` up as `name`."""
        raise NotImplementedError

    def restore(self, disk: Path, name: str, out_dir: Path) -> tuple[list[str], Path | None, Path]:
        """The command, its working directory, and the file it will restore into."""
        raise NotImplementedError


class Cairn(Tool):
    def __init__(self, repo: Path, exe: str, name: str = CAIRN, use_map: bool = False) -> None:
        super().__init__(repo)
        self.exe, self.name, self.use_map = exe, name, use_map

    def warm(self) -> list[str]:
        return [self.exe, "repo", "backup", "--help"]

    def init(self) -> list[str]:
        # The passphrase comes from CAIRN_REPO_PASSPHRASE in the environment.
        return [self.exe, "repo", "init", str(self.repo), "--encrypt"]

    def backup(self, disk: Path, name: str, parent: str | None,
               ranges: Path | None) -> tuple[list[str], Path | None]:
        argv = [self.exe, "repo", "backup", str(self.repo), "--disk", str(disk), "--name", name]
        if parent:
            argv += ["--parent", parent]
        if ranges and self.use_map:
            argv += ["--changed-ranges", str(ranges)]
        return argv, None

    def restore(self, disk: Path, name: str, out_dir: Path) -> tuple[list[str], Path | None, Path]:
        out = out_dir / disk.name
        return ([self.exe, "repo", "restore", str(self.repo), "--name", name,
                 "--output", str(out), "--format", "raw"], None, out)


def _cairn_on_files(tool: Tool) -> Cairn | None:
    """`tool` if it is Cairn itself (not with a map) on a repository in a directory, and has
    not failed: the limit and the in-place restore read its pack files, which a bucket
    does not have here."""
    if tool.name == CAIRN and isinstance(tool, Cairn) and not isinstance(tool, CairnS3) and not tool.failed:
        return tool
    return None


def s3_stored_bytes(prefix: str) -> int:
    """The sizes of every object under `prefix/` in the bench bucket, added up."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().with_name("cairn_s3.py")), "stored", prefix],
                         capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout)["stored"])


class CairnS3(Cairn):
    """Cairn on a prefix of the bench bucket, through bench/cairn_s3.py."""

    def __init__(self, prefix: str, name: str = CAIRN, use_map: bool = False) -> None:
        super().__init__(Path(prefix), sys.executable, name, use_map)
        self.prefix = prefix
        self.helper = [sys.executable, str(Path(__file__).resolve().with_name("cairn_s3.py"))]

    def warm(self) -> list[str]:
        return [*self.helper, "--help"]

    def init(self) -> list[str]:
        return [*self.helper, "init", self.prefix]

    def backup(self, disk: Path, name: str, parent: str | None,
               ranges: Path | None) -> tuple[list[str], Path | None]:
        argv, cwd = super().backup(disk, name, parent, ranges)
        return [*self.helper, "backup", self.prefix, *argv[4:]], cwd

    def restore(self, disk: Path, name: str, out_dir: Path) -> tuple[list[str], Path | None, Path]:
        out = out_dir / disk.name
        return [*self.helper, "restore", self.prefix, "--name", name, "--output", str(out)], None, out

    def stored_bytes(self) -> int:
        return s3_stored_bytes(self.prefix)

    def repo_files(self) -> list[Path]:
        return []

    def copy_to(self, prefix: str, name: str) -> CairnS3:
        subprocess.run([*self.helper, "copy", self.prefix, prefix], check=True, stdout=subprocess.DEVNULL)
        return CairnS3(prefix, name, use_map=True)


class Restic(Tool):
    """restic with its defaults: repository v2, compression auto, its local cache.

    The image is backed up by path, as restic's users back up VM images (a stopped
    guest's file, or an LVM/ZFS snapshot's): restic then records the file's metadata
    and finds the parent snapshot by path on its own. `--stdin` is for streams with no
    file behind them (dumps, `qemu-img convert -O raw ... -` pipes) and costs a pipe.
    """

    name = RESTIC

    def warm(self) -> list[str]:
        return ["restic", "version"]

    def init(self) -> list[str]:
        return ["restic", "-r", str(self.repo), "init"]

    def backup(self, disk: Path, name: str, parent: str | None,
               ranges: Path | None) -> tuple[list[str], Path | None]:
        return ["restic", "-r", str(self.repo), "backup", "--tag", name, str(disk)], None

    def restore(self, disk: Path, name: str, out_dir: Path) -> tuple[list[str], Path | None, Path]:
        # restore writes the file under its absolute path below the target.
        return (["restic", "-r", str(self.repo), "restore", "latest", "--target", str(out_dir)],
                None, out_dir / disk.relative_to(disk.anchor))


class ResticS3(Restic):
    """restic's S3 backend on a prefix of the bench bucket (path-style, as Swift wants)."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__(Path(prefix))
        self.url, self.prefix = url, prefix

    def _restic(self) -> list[str]:
        return ["restic", "-r", self.url, "-o", "s3.bucket-lookup=path", "--cacert", os.environ["AWS_CA_BUNDLE"]]

    def init(self) -> list[str]:
        return [*self._restic(), "init"]

    def backup(self, disk: Path, name: str, parent: str | None,
               ranges: Path | None) -> tuple[list[str], Path | None]:
        return [*self._restic(), "backup", "--tag", name, str(disk)], None

    def restore(self, disk: Path, name: str, out_dir: Path) -> tuple[list[str], Path | None, Path]:
        return ([*self._restic(), "restore", "latest", "--target", str(out_dir)], None,
                out_dir / disk.relative_to(disk.anchor))

    def stored_bytes(self) -> int:
        return s3_stored_bytes(self.prefix)

    def repo_files(self) -> list[Path]:
        return []


class Borg(Tool):
    """borg with repokey encryption and, unless told, its default chunker and lz4."""

    def __init__(self, repo: Path, name: str, chunker: str | None = None) -> None:
        super().__init__(repo)
        self.name, self.chunker = name, chunker

    def warm(self) -> list[str]:
        return ["borg", "--version"]

    def init(self) -> list[str]:
        return ["borg", "init", "--encryption", "repokey", str(self.repo)]

    def backup(self, disk: Path, name: str, parent: str | None,
               ranges: Path | None) -> tuple[list[str], Path | None]:
        chunker = ["--chunker-params", self.chunker] if self.chunker else []
        # Run in the disk's directory so the archive holds "disk.raw", not the full path.
        return ["borg", "create", *chunker, f"{self.repo}::{name}", disk.name], disk.parent

    def restore(self, disk: Path, name: str, out_dir: Path) -> tuple[list[str], Path | None, Path]:
        # --sparse is what borg's docs advise for VM images: holes stay holes.
        return (["borg", "extract", "--sparse", f"{self.repo}::{name}"], out_dir,
                out_dir / disk.name)


@dataclass
class Result:
    size: int  # disk size in bytes
    tool: str
    step: str
    wall_s: float
    tool_s: float
    cpu_s: float
    rss: int
    others_cpu_s: float  # CPU other processes took meanwhile; high means a noisy figure
    stored: int | None = None  # repository bytes on disk after the step (du)
    added: int | None = None  # growth of the repository during the step
    restore_ok: bool | None = None
    detail: dict = field(default_factory=dict)  # Cairn's own JSON for backups


class Cache:
    """Put the page cache in the same state before every step.

    As root, sync and drop it, so every tool reads its input from disk; then run the
    tool once idle (`--version`) so its own program is cached, as in a long-running
    worker: the figures then compare data paths, not how many files an interpreter
    reads at start-up. Without root, read the step's input once instead so every tool
    reads it from memory.
    """

    def __init__(self) -> None:
        try:
            self._drop()
            self.mode = "dropped before each step, tool's program warmed"
            self.dropping = True
        except OSError:
            self.mode = "not droppable here: each step's input read once beforehand (warm)"
            self.dropping = False

    @staticmethod
    def _drop() -> None:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")

    def settle(self, tool: Tool, inputs: list[Path], env: dict[str, str]) -> None:
        if self.dropping:
            self._drop()
        else:
            os.sync()
            for top in inputs:
                files = [top] if top.is_file() else [Path(r) / n for r, _d, ns in os.walk(top) for n in ns]
                for f in files:
                    with open(f, "rb") as fh:
                        while fh.read(16 * MiB):
                            pass
        subprocess.run(tool.warm(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(8 * MiB)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


class Suite:
    """One disk size: full, incremental, restore for each tool, in that order."""

    def __init__(self, image: DiskImage, workdir: Path, tools: list[Tool], cache: Cache,
                 env: dict[str, str], cairn_exe: str, writes: int, seed: int,
                 restore_only: bool = False) -> None:
        self.image, self.tools, self.cache, self.env = image, tools, cache, env
        self.cairn_exe, self.writes, self.seed = cairn_exe, writes, seed
        self.restore_only = restore_only
        self.dir = workdir / f"run-{format_size(image.size)}"
        self.disk = self.dir / "disk.raw"
        self.logs = self.dir / "logs"
        self.results: list[Result] = []

    def _log(self, tool: Tool, step: str) -> Path:
        return self.logs / f"{tool.name}-{step}.log"

    def _attempt(self, tool: Tool, step: str, fn: Callable[..., None]) -> None:
        """Run one step of one tool; a failure benches that tool, not the others."""
        if tool.failed:
            return
        try:
            fn()
        except ToolFailed as exc:
            tool.failed = f"{step}: {exc}"
            print(f"  !! {tool.name} {step} FAILED: {exc}", file=sys.stderr)

    def run(self) -> list[Result]:
        if self.restore_only:
            return self.run_restores()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.logs.mkdir(parents=True)
        copy_sparse(self.image.path, self.disk)
        stored: dict[str, int] = {}
        for tool in self.tools:
            def init(tool: Tool = tool) -> None:
                run_measured(tool.init(), self.env, self._log(tool, "init"))
                stored[tool.name] = tool.stored_bytes()
            self._attempt(tool, "init", init)

        print(f"[{format_size(self.image.size)}] full backup", flush=True)
        for tool in self.tools:
            self._attempt(tool, FULL, lambda tool=tool: self._backup(tool, FULL, None, None, stored))

        # Cairn with a changed-range map gets its own copy of the repository as it was
        # after the full, so neither incremental finds the other's new chunks stored.
        tools = list(self.tools)
        cairn = next((t for t in tools if t.name == CAIRN and not t.failed), None)
        if isinstance(cairn, CairnS3):
            twin: Cairn = cairn.copy_to(f"{cairn.prefix}-map", CAIRN_MAP)
            stored[twin.name] = twin.stored_bytes()
            tools.insert(tools.index(cairn) + 1, twin)
        elif cairn is not None:
            twin = Cairn(self.dir / "repo-cairn-map", self.cairn_exe, CAIRN_MAP, use_map=True)
            subprocess.run(["cp", "-a", "--reflink=auto", str(cairn.repo), str(twin.repo)],
                           check=True)
            stored[twin.name] = allocated_bytes(twin.repo)
            tools.insert(tools.index(cairn) + 1, twin)

        ranges = scatter_writes(self.disk, self.writes, MiB, self.seed)
        ranges_file = self.dir / "changed-ranges.json"
        ranges_file.write_text(json.dumps(ranges))
        expected = sha256_file(self.disk)

        print(f"[{format_size(self.image.size)}] incremental", flush=True)
        for tool in tools:
            self._attempt(tool, INCR, lambda tool=tool: self._backup(tool, INCR, FULL, ranges_file, stored))

        print(f"[{format_size(self.image.size)}] restore", flush=True)
        self._restore_all(tools, expected)
        return self.results

    def _restore_all(self, tools: list[Tool], expected: str) -> None:
        """Every tool's restore, with the machine's limit measured right after Cairn's (the
        same minute, so that a run's restore and its limit see the same load), then Cairn
        in place onto the image as it is."""
        for tool in tools:
            self._attempt(tool, RESTORE, lambda tool=tool: self._restore(tool, expected))
            if (cairn := _cairn_on_files(tool)) is not None:
                for what in (LIMIT_COPY, LIMIT_DECODE):
                    self._attempt(cairn, what, lambda what=what, cairn=cairn: self._limit(cairn, what))
        cairn = next((c for t in tools if (c := _cairn_on_files(t)) is not None), None)
        if cairn is not None:
            self._attempt(cairn, CAIRN_INPLACE, lambda: self._restore_inplace(cairn, expected))

    def _restore_inplace(self, cairn: Cairn, expected: str) -> None:
        out_dir = self.dir / f"restore-{CAIRN_INPLACE}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        out = out_dir / self.disk.name
        copy_sparse(self.disk, out)  # the disk as it is: here, unchanged since the snapshot
        argv = [*cairn.restore(self.disk, INCR, out_dir)[0], "--in-place"]
        self.cache.settle(cairn, [*cairn.repo_files(), out], self.env)
        m = run_measured(argv, self.env, self._log(cairn, CAIRN_INPLACE), capture=True)
        ok = sha256_file(out) == expected
        detail = json.loads(m.stdout)
        self.results.append(Result(self.image.size, CAIRN_INPLACE, RESTORE, m.wall_s, m.tool_s, m.cpu_s, m.rss,
                                   m.others_cpu_s, restore_ok=ok, detail=detail))
        print(f"  {CAIRN_INPLACE:<13} {m.wall_s:8.1f} s  {m.rss / MiB:7.0f} MiB  "
              f"{'identical' if ok else 'MISMATCH'}, {detail['bytes_written'] / MiB:,.0f} MiB written", flush=True)
        if ok:
            shutil.rmtree(out_dir)

    def _limit(self, cairn: Cairn, what: str) -> None:
        """bench/restore_limit.py on the restore's own bytes, cold cache like the restores;
        its time is the timed part it reports, its CPU and RSS the child's."""
        argv = [sys.executable, str(LIMIT_SCRIPT), what.removeprefix("limit-"), str(cairn.repo), INCR]
        if what == LIMIT_COPY:
            argv.append(str(self.dir / "limit-copy.raw"))
        self.cache.settle(cairn, cairn.repo_files(), self.env)
        m = run_measured(argv, self.env, self.logs / f"{what}.log", capture=True)
        detail = json.loads(m.stdout)
        seconds = float(detail["seconds"])
        # others' CPU over the timed part only, pro rata, so "others %" means what it does elsewhere
        others = m.others_cpu_s * seconds / m.tool_s if m.tool_s else 0.0
        self.results.append(Result(self.image.size, what, RESTORE, seconds, m.tool_s, m.cpu_s, m.rss,
                                   others, detail=detail))
        print(f"  {what:<13} {seconds:8.1f} s", flush=True)

    def run_restores(self) -> list[Result]:
        """Only the restore step, from the repositories a previous full run left here."""
        tools = list(self.tools)
        cairn = next((t for t in tools if t.name == CAIRN), None)
        if cairn is not None:
            tools.insert(tools.index(cairn) + 1,
                         Cairn(self.dir / "repo-cairn-map", self.cairn_exe, CAIRN_MAP, use_map=True))
        missing = [str(p) for p in [self.disk, *(t.repo for t in tools)] if not p.exists()]
        if missing:
            raise SystemExit(f"--steps restore needs a previous full run in {self.dir}; missing: "
                             f"{', '.join(missing)}")
        expected = sha256_file(self.disk)
        print(f"[{format_size(self.image.size)}] restore", flush=True)
        self._restore_all(tools, expected)
        return self.results

    def _backup(self, tool: Tool, step: str, parent: str | None, ranges: Path | None,
                stored: dict[str, int]) -> None:
        argv, cwd = tool.backup(self.disk, step, parent, ranges)
        self.cache.settle(tool, [self.disk], self.env)
        m = run_measured(argv, self.env, self._log(tool, step), cwd, capture=isinstance(tool, Cairn))
        after = tool.stored_bytes()
        detail = {}
        if isinstance(tool, Cairn):
            detail = json.loads(m.stdout)
        self.results.append(Result(self.image.size, tool.name, step, m.wall_s, m.tool_s, m.cpu_s,
                                   m.rss, m.others_cpu_s, after, after - stored[tool.name],
                                   detail=detail))
        stored[tool.name] = after
        print(f"  {tool.name:<13} {m.wall_s:8.1f} s  {m.rss / MiB:7.0f} MiB", flush=True)

    def _restore(self, tool: Tool, expected: str) -> None:
        out_dir = self.dir / f"restore-{tool.name}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        argv, cwd, out = tool.restore(self.disk, INCR, out_dir)
        self.cache.settle(tool, tool.repo_files(), self.env)
        m = run_measured(argv, self.env, self._log(tool, RESTORE), cwd)
        ok = out.exists() and sha256_file(out) == expected
        if not ok:
            print(f"  !! {tool.name} RESTORE IS NOT BIT-IDENTICAL to the modified image "
                  f"({out})", file=sys.stderr)
        self.results.append(Result(self.image.size, tool.name, RESTORE, m.wall_s, m.tool_s,
                                   m.cpu_s, m.rss, m.others_cpu_s, restore_ok=ok,
                                   detail={"output_allocated": allocated_bytes(out) if out.exists() else 0}))
        print(f"  {tool.name:<13} {m.wall_s:8.1f} s  {m.rss / MiB:7.0f} MiB  "
              f"{'identical' if ok else 'MISMATCH'}", flush=True)
        if ok:  # keep a bad restore for inspection; a good one is 4 GiB of nothing new
            shutil.rmtree(out_dir)


# ---------------------------------------------------------------- reporting

def best_of(runs: list[Result]) -> list[Result]:
    """The fastest measurement of each (disk, tool, step), in first-run order.

    Other processes only ever slow a run down, so the minimum is the least disturbed.
    """
    best: dict[tuple[int, str, str], Result] = {}
    for r in runs:
        key = (r.size, r.tool, r.step)
        if key not in best or r.wall_s < best[key].wall_s:
            best[key] = r
    return list(best.values())


def _find(results: list[Result], tool: str, step: str, size: int) -> Result | None:
    return next((r for r in results if (r.tool, r.step, r.size) == (tool, step, size)), None)


@dataclass
class Target:
    what: str
    limit: str
    value: float | None  # None: could not be measured (a tool skipped or failed)
    ok: bool | None


def evaluate(results: list[Result], runs: list[Result], by_run: list[float], size: int,
             rss_size: int | None) -> list[Target]:
    """The targets for a 2-core machine, each with the ratio it was judged on.

    Times and bytes come from `results` (the best of each step); peak RSS is the
    highest over every run in `runs`, since memory is a ceiling, not a speed; `by_run`
    is restore_vs_limit_by_run's list.
    """
    def ratio(tool: str, step: str, attr: str, peer: str = RESTIC) -> float | None:
        a, b = _find(results, tool, step, size), _find(results, peer, step, size)
        if a is None or b is None or not getattr(b, attr):
            return None
        return getattr(a, attr) / getattr(b, attr)

    def target(what: str, value: float | None, limit: float, unit: str = "×") -> Target:
        shown = f"≤ {limit:g}{unit}" if unit == "×" else f"≤ {limit / MiB:g} MiB"
        return Target(what, shown, value, None if value is None else value <= limit)

    out = [
        target("full backup time vs restic", ratio(CAIRN, FULL, "wall_s"), 0.5),
        target("incremental time vs restic, no map", ratio(CAIRN, INCR, "wall_s"), 0.5),
        target("incremental time vs restic, with map", ratio(CAIRN_MAP, INCR, "wall_s"), 0.2),
        target("restore time vs restic", ratio(CAIRN, RESTORE, "wall_s"), 0.5),
        target("restore time vs the machine's limit", restore_vs_limit(results, size), LIMIT_RATIO),
        target("restore vs the limit, worst single run", max(by_run) if by_run else None, LIMIT_RATIO),
        target("bytes stored after full vs restic", ratio(CAIRN, FULL, "stored"), 1.15),
        target("bytes added by incremental vs restic", ratio(CAIRN, INCR, "added"), 1.3),
    ]
    inplace = _find(results, CAIRN_INPLACE, RESTORE, size)
    if inplace is not None:
        written = inplace.detail.get("bytes_written")
        out.append(Target("in-place restore onto the unchanged disk: written", "≤ 0 MiB", written,
                          None if written is None else written == 0))
    cairn_rss = {s: max((r.rss for r in runs if r.size == s and r.tool.startswith(CAIRN)),
                        default=None) for s in {size, rss_size} if s}
    small = cairn_rss.get(size)
    out.append(Target(f"Cairn peak RSS, {format_size(size)} disk", f"≤ {RSS_LIMIT // MiB} MiB",
                      small, None if small is None else small <= RSS_LIMIT))
    big = cairn_rss.get(rss_size) if rss_size else None
    if rss_size and big is not None and small:
        out.append(Target(f"Cairn peak RSS, {format_size(rss_size)} disk", f"≤ {RSS_LIMIT // MiB} MiB",
                          big, big <= RSS_LIMIT))
        out.append(Target(f"RSS {format_size(rss_size)} ÷ RSS {format_size(size)} (size-independent)",
                          f"≤ {RSS_GROWTH_LIMIT:g}×", big / small, big / small <= RSS_GROWTH_LIMIT))
    return out


def machine_limit(results: list[Result], size: int) -> float | None:
    """The restore's floor on this machine: the larger of its I/O alone and its decoding
    alone (bench/restore_limit.py), each the best of the run's repetitions."""
    copy, decode = _find(results, LIMIT_COPY, RESTORE, size), _find(results, LIMIT_DECODE, RESTORE, size)
    if copy is None or decode is None:
        return None
    return max(copy.wall_s, decode.wall_s)


def restore_vs_limit(results: list[Result], size: int) -> float | None:
    cairn, limit = _find(results, CAIRN, RESTORE, size), machine_limit(results, size)
    if cairn is None or not limit:
        return None
    return cairn.wall_s / limit


def restore_vs_limit_by_run(runs: list[Result], size: int) -> list[float]:
    """Each repetition's restore against the limit measured right after it: unlike the
    best-of ratio, it never pairs a restore with a limit measured while the machine was
    quieter. The n-th result of a tool is its n-th repetition (Suite.run measures every
    tool once per repetition)."""
    def walls(tool: str) -> list[float]:
        return [r.wall_s for r in runs if (r.tool, r.step, r.size) == (tool, RESTORE, size)]
    cairn, copies, decodes = walls(CAIRN), walls(LIMIT_COPY), walls(LIMIT_DECODE)
    if not len(cairn) == len(copies) == len(decodes):
        return []  # one failed in some repetition: which runs pair up is no longer known
    return [c / max(copy, decode) for c, copy, decode in zip(cairn, copies, decodes, strict=True)]


def _mib(n: int | None) -> str:
    return "" if n is None else f"{n / MiB:,.1f}"


def _x(a: float | None, b: float | None) -> str:
    return "" if a is None or not b else f"{a / b:.2f}"


def table(results: list[Result]) -> str:
    """One aligned table; on a peer's row, Cairn's figure divided by the peer's.

    On an incremental row the time ratio is given for Cairn without and with the map.
    "others %" is the share of the machine's CPUs that other processes used during
    the step: above a few percent, that figure was slowed by someone else.
    """
    head = ["disk", "step", "tool", "wall s", "cpu s", "others %", "peak RSS MiB", "stored MiB",
            "added MiB", "cairn÷ time", "cairn÷ stored", "cairn÷ added", "cairn÷ RSS", "restore"]
    rows = [head]
    for r in results:
        c = _find(results, CAIRN, r.step, r.size)
        ratios = ["", "", "", ""]
        if c is not None and r.tool.startswith("limit-"):
            ratios = [_x(c.wall_s, r.wall_s), "", "", ""]
        elif c is not None and not r.tool.startswith(CAIRN):
            time_x = _x(c.wall_s, r.wall_s)
            cm = _find(results, CAIRN_MAP, r.step, r.size)
            if r.step == INCR and cm is not None:
                time_x += f" / {_x(cm.wall_s, r.wall_s)} map"
            ratios = [time_x, _x(c.stored, r.stored) if r.step == FULL else "",
                      _x(c.added, r.added) if r.step == INCR else "", _x(c.rss, r.rss)]
        restore = "" if r.restore_ok is None else ("identical" if r.restore_ok else "MISMATCH")
        rows.append([format_size(r.size), r.step, r.tool, f"{r.wall_s:.1f}", f"{r.cpu_s:.1f}",
                     f"{100 * r.others_cpu_s / (r.wall_s * (os.cpu_count() or 1)):.0f}",
                     _mib(r.rss), _mib(r.stored), _mib(r.added), *ratios, restore])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def targets_text(targets: list[Target]) -> str:
    lines = []
    for t in targets:
        if t.value is None:
            shown, verdict = "n/a", "SKIP"
        else:
            shown = f"{t.value / MiB:.0f} MiB" if "MiB" in t.limit else f"{t.value:.2f}×"
            verdict = "PASS" if t.ok else "FAIL"
        lines.append(f"  {verdict}  {t.what:<48} {shown:>9}  (target {t.limit})")
    return "\n".join(lines)


def environment(cache: Cache, cairn_exe: str) -> dict:
    def version(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "absent"
    root = Path(__file__).resolve().parent.parent
    rev = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    mem = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo")
               if line.startswith("MemTotal:"))
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "memory": mem, "kernel": platform.release(),
        "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name")), platform.machine()),
        "python": platform.python_version(),
        "cairn": f"{importlib.metadata.version('cairn')} ({rev})",
        "restic": version(["restic", "version"]), "borg": version(["borg", "--version"]),
        "page_cache": cache.mode,
        "cairn_exe": cairn_exe,
    }


def s3_environment() -> dict[str, str]:
    """The endpoint and keys of scripts/swift-dev.sh's Swift (started if need be), for
    both bench/cairn_s3.py and restic (AWS_* variables)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "swift-dev.sh"
    subprocess.run([str(script), "start"], check=True)
    out = subprocess.run([str(script), "env"], capture_output=True, text=True, check=True).stdout
    s3 = dict(line.split("=", 1) for line in out.split())
    s3["CAIRN_S3_BUCKET"] = "cairn-bench"
    # HTTPS for both tools: restic (minio-go) signs plain-HTTP uploads in aws-chunked
    # encoding, which Swift's s3api refuses.
    s3["CAIRN_S3_ENDPOINT"] = s3["CAIRN_S3_TLS_ENDPOINT"]
    s3["AWS_CA_BUNDLE"] = s3["CAIRN_S3_CA_BUNDLE"]
    s3.update(AWS_ACCESS_KEY_ID=s3["CAIRN_S3_ACCESS_KEY"], AWS_SECRET_ACCESS_KEY=s3["CAIRN_S3_SECRET_KEY"],
              AWS_DEFAULT_REGION=s3["CAIRN_S3_REGION"])
    return s3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="4G", help="disk size (default 4G)")
    ap.add_argument("--rss-check", default="16G", metavar="SIZE",
                    help="also run Cairn alone on a disk of SIZE holding the same data, "
                         "to show peak RSS does not grow with disk size ('off' to skip)")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp/cairn-bench"),
                    help="images (cached), repositories and logs (default %(default)s)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    ap.add_argument("--skip-cairn", action="store_true")
    ap.add_argument("--skip-restic", action="store_true")
    ap.add_argument("--skip-borg", action="store_true", help="skip both borg variants")
    ap.add_argument("--target", choices=("filesystem", "s3"), default="filesystem",
                    help="where the repositories live: directories in the work directory, or "
                         "prefixes of a bucket on scripts/swift-dev.sh's S3 endpoint (no borg)")
    ap.add_argument("--writes", type=int, default=200, help="1 MiB random writes between backups")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run everything N times and keep each tool's fastest run of each "
                         "step (for a shared, noisy machine)")
    ap.add_argument("--cairn", default=str(Path(sys.executable).with_name("cairn")),
                    help="the cairn executable (default: beside this Python)")
    ap.add_argument("--steps", choices=("all", "restore"), default="all",
                    help="'restore' repeats only the restore step, on the repositories and the "
                         "modified image a previous run left in the work directory")
    args = ap.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the running tool is killed with us (run_measured).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    size = parse_size(args.size)
    rss_size = None if args.rss_check.lower() in ("off", "no", "0") else parse_size(args.rss_check)
    if rss_size == size or args.skip_cairn:
        rss_size = None
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # Cairn runs byte-compiled, as an installed package does: where the environment sets
    # PYTHONDONTWRITEBYTECODE, each run would otherwise compile every module it imports
    # again (40-50 ms of a restore's start-up here), which no installed Cairn pays.
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1)
    cache = Cache()
    env = dict(os.environ, RESTIC_PASSWORD=PASSPHRASE, BORG_PASSPHRASE=PASSPHRASE,
               CAIRN_REPO_PASSPHRASE=PASSPHRASE,
               # Tool caches live in the work dir: not counted as stored, cleared per run.
               RESTIC_CACHE_DIR=str(workdir / "cache" / "restic"),
               BORG_BASE_DIR=str(workdir / "cache" / "borg"))
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    info = environment(cache, args.cairn)
    print(f"{info['date']}  {info['cpus']} CPUs ({info['cpu_model']}), "
          f"{info['memory'] / (1 << 30):.0f} GiB RAM; page cache {cache.mode}", flush=True)

    if args.target == "s3":
        s3_env = s3_environment()
        env.update(s3_env)
        os.environ.update(s3_env)  # for the object listings that measure what is stored

    def tools_in(run_dir: Path, only_cairn: bool) -> list[Tool]:
        tools: list[Tool] = []
        if args.target == "s3":
            run = f"bench-{run_dir.name}-{int(time.time())}"
            cairn = CairnS3(f"{run}/cairn")
            if not args.skip_cairn:
                tools.append(cairn)
            if not only_cairn and not args.skip_restic:
                url = f"s3:{env['CAIRN_S3_ENDPOINT']}/{env['CAIRN_S3_BUCKET']}/{run}/restic"
                tools.append(ResticS3(url, f"{run}/restic"))
            return tools
        if not args.skip_cairn:
            tools.append(Cairn(run_dir / "repo-cairn", args.cairn))
        if only_cairn:
            return tools
        if not args.skip_restic:
            tools.append(Restic(run_dir / "repo-restic"))
        if not args.skip_borg:
            tools.append(Borg(run_dir / "repo-borg", "borg"))
            tools.append(Borg(run_dir / "repo-borg-fixed4M", "borg-fixed4M", "fixed,4194304"))
        return tools

    runs: list[Result] = []  # every measurement, all repetitions
    failed: list[str] = []
    images: dict[int, DiskImage] = {}
    for disk_size, only_cairn in ((size, False), (rss_size, True)):
        if disk_size is None:
            continue
        image = images[disk_size] = build_image(workdir, disk_size)
        print(f"disk {format_size(disk_size)}: ext4 with {image.files:,} files, "
              f"{image.data_bytes / MiB:,.0f} MiB of /usr, {image.allocated / MiB:,.0f} MiB allocated",
              flush=True)
        for rep in range(args.repeat):
            if args.repeat > 1:
                print(f"repetition {rep + 1} of {args.repeat}", flush=True)
            suite = Suite(image, workdir, tools_in(workdir / f"run-{format_size(disk_size)}", only_cairn),
                          cache, env, args.cairn, args.writes, args.seed,
                          restore_only=args.steps == "restore")
            runs += suite.run()
            failed += [f"{t.name} @{format_size(disk_size)}: {t.failed}" for t in suite.tools if t.failed]
    results = best_of(runs)

    by_run = restore_vs_limit_by_run(runs, size)
    targets = evaluate(results, runs, by_run, size, rss_size)
    print()
    print(f"Results {info['date']}, page cache {cache.mode}; wall = tool + sync")
    print(table(results))
    limit = machine_limit(results, size)
    cairn_restore, restic_restore = _find(results, CAIRN, RESTORE, size), _find(results, RESTIC, RESTORE, size)
    if limit and cairn_restore:
        copy, decode = _find(results, LIMIT_COPY, RESTORE, size), _find(results, LIMIT_DECODE, RESTORE, size)
        assert copy is not None and decode is not None
        vs_restic = f", {cairn_restore.wall_s / restic_restore.wall_s:.2f}× restic's {restic_restore.wall_s:.1f} s" \
            if restic_restore else ""
        print(f"\nRestore {format_size(size)}: cairn {cairn_restore.wall_s:.1f} s = "
              f"{cairn_restore.wall_s / limit:.2f}× the machine's limit of {limit:.1f} s (I/O alone "
              f"{copy.wall_s:.1f} s, decoding alone {decode.wall_s:.1f} s){vs_restic}")
        decode_cpu, copy_cpu = decode.detail.get("cpu_seconds"), copy.detail.get("cpu_seconds")
        if decode_cpu and copy_cpu:
            # When other processes hold the CPUs, a restore's time tends to this ratio:
            # it must do all of this CPU work in whatever share of the CPUs it gets.
            limit_cpu = decode_cpu + copy_cpu
            print(f"CPU: cairn's restore {cairn_restore.cpu_s:.1f} s, start-up included; the limit's timed "
                  f"parts {limit_cpu:.1f} s (decoding {decode_cpu:.1f} s, I/O {copy_cpu:.1f} s): "
                  f"{cairn_restore.cpu_s / limit_cpu:.2f}× the CPU work")
        if len(by_run) > 1:
            print("Run by run, against that run's own limit: " + ", ".join(f"{r:.2f}×" for r in by_run))
    print("\nTargets (2-core machine):")
    print(targets_text(targets))
    mismatches = [f"{r.tool} @{format_size(r.size)}" for r in runs if r.restore_ok is False]
    if args.json:
        args.json.write_text(json.dumps({
            "environment": info, "argv": sys.argv,
            "disks": {format_size(s): asdict(i) | {"path": str(i.path)} for s, i in images.items()},
            "results": [asdict(r) for r in results], "repeat": args.repeat,
            "all_runs": [asdict(r) for r in runs],
            "targets": [asdict(t) for t in targets],
            "failures": failed, "restore_mismatches": mismatches,
        }, indent=2))
    for f in failed:
        print(f"FAILED: {f}", file=sys.stderr)
    if mismatches:
        print("\n" + "!" * 72 + f"\nRESTORE MISMATCH: {', '.join(mismatches)} did not restore the "
              "modified image bit for bit.\n" + "!" * 72, file=sys.stderr)
    return 1 if failed or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
