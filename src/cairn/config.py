"""Cairn's settings: one typed object, read from an INI file and `CAIRN_*` variables.

Every option is declared once, in `OPTIONS`, with its section, type, default and help
text; loading, the environment overrides and the sample file (`cairn config sample`,
kept as `etc/cairn.conf.sample`) are all derived from that list, so the documentation
cannot drift from the code.

Precedence, lowest first: the built-in default, the configuration file
(`--config-file`, else `$CAIRN_CONFIG_FILE`, else none), then the environment variable
named in the option (`CAIRN_<NAME>` for options of `[DEFAULT]`).
"""

from __future__ import annotations

import configparser
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cairn.errors import InvalidInput


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_path(text: str) -> Path:
    return Path(text).expanduser()


@dataclass(frozen=True)
class Option:
    """One configuration option: where it lives, how it parses, what it means."""

    section: str
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    type_name: str = "string"

    @property
    def env(self) -> str:
        if self.section == "DEFAULT":
            return f"CAIRN_{self.name.upper()}"
        return f"CAIRN_{self.section.upper()}__{self.name.upper()}"


def _default_data_dir() -> str:
    return os.environ.get("CAIRN_DATA_DIR") or str(Path.home() / ".local" / "share" / "cairn")


OPTIONS: tuple[Option, ...] = (
    Option("DEFAULT", "data_dir", _parse_path, None,
           "Directory for the embedded database, the admin token and the default backup "
           "target. Default: $CAIRN_DATA_DIR, else ~/.local/share/cairn.", "path"),
    Option("DEFAULT", "database_url", str, None,
           "SQLAlchemy URL of the database: sqlite:///PATH, "
           "postgresql+psycopg://USER:PASS@HOST/DB or mysql+pymysql://USER:PASS@HOST/DB. "
           "Default: SQLite at <data_dir>/cairn.sqlite."),
    Option("DEFAULT", "host", str, "0.0.0.0", "Address the HTTP API listens on."),
    Option("DEFAULT", "port", int, 8780, "Port the HTTP API listens on.", "integer"),
    Option("DEFAULT", "public_endpoint", str, None,
           "Base URL put in resource links (for example https://backup.example.com:8780). "
           "Default: the URL each request came in on."),
    Option("DEFAULT", "policy_file", _parse_path, None,
           "oslo.policy YAML file whose rules override the built-in defaults "
           "(see `cairn policy sample`).", "path"),
    Option("DEFAULT", "timezone", str, "UTC",
           "The service's timezone (IANA name): jobschedule defaults and "
           "`appliance_timezone`."),
    Option("DEFAULT", "platform", str, "local",
           "Where instances come from: `local` (an operator-registered inventory)."),
    Option("DEFAULT", "max_request_body_bytes", int, 1024 * 1024,
           "Largest request body accepted; a larger one is refused with 413.", "integer"),
    Option("DEFAULT", "max_list_limit", int, 1000,
           "Most items one list request returns; `limit` above it is capped.", "integer"),
    Option("DEFAULT", "worker_threads", int, 4,
           "Jobs the in-process worker pool runs at once.", "integer"),
    Option("DEFAULT", "job_lease_seconds", int, 60,
           "How long a job's lease lasts without a heartbeat before the reaper fails it. "
           "Workers renew it every third of that time.", "integer"),
    Option("DEFAULT", "gc_wait_seconds", float, 10.0,
           "How long a garbage collection after a snapshot or delete waits for backups that "
           "were running when it planned; past that its plan waits for the next collection.",
           "number"),
    Option("DEFAULT", "scheduler_interval_seconds", float, 30.0,
           "How often the scheduler looks for due jobschedules.", "number"),
    Option("DEFAULT", "log_level", str, "INFO", "Python logging level."),
    Option("DEFAULT", "transport_url", str, "",
           "oslo.messaging transport URL of the broker the roles share, for example "
           "rabbit://USER:PASS@HOST:5672/VHOST. Empty: jobs run in the process that "
           "created them (the embedded default of `cairn serve`) and no notifications "
           "are sent. `cairn api`, `cairn scheduler` and `cairn worker` require it. Give "
           "each Cairn installation sharing a broker its own virtual host."),
    Option("DEFAULT", "worker_name", str, None,
           "This worker's name: jobs whose payload names a worker are sent to that one "
           "only. Default: the host name."),
)


@dataclass(frozen=True)
class TargetSettings:
    """A backup target from a `[target:NAME]` section.

    `path` is where the target is mounted on this host (an NFS share's mount point, or
    any directory); `export` is the NFS export string (`host:/export`) clients know it
    by; `passphrase_file` encrypts the repositories Cairn creates on it.
    """

    name: str
    path: Path
    export: str | None = None
    passphrase_file: Path | None = None


TARGET_SECTION = "target:"


@dataclass(frozen=True)
class Settings:
    """The resolved configuration every part of Cairn reads."""

    data_dir: Path
    database_url: str
    host: str = "0.0.0.0"
    port: int = 8780
    public_endpoint: str | None = None
    policy_file: Path | None = None
    timezone: str = "UTC"
    platform: str = "local"
    max_request_body_bytes: int = 1024 * 1024
    max_list_limit: int = 1000
    worker_threads: int = 4
    job_lease_seconds: int = 60
    gc_wait_seconds: float = 10.0
    scheduler_interval_seconds: float = 30.0
    log_level: str = "INFO"
    transport_url: str = ""
    worker_name: str | None = None
    targets: tuple[TargetSettings, ...] = ()
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def worker_host(self) -> str:
        """The name this process goes by as a worker (`worker_name`, else the host name)."""
        return self.worker_name or socket.gethostname()

    @property
    def backup_targets(self) -> tuple[TargetSettings, ...]:
        """The configured targets, or the embedded default inside the data directory."""
        return self.targets or (TargetSettings("default", self.data_dir / "targets" / "default"),)


def load_settings(config_file: str | Path | None = None,
                  environ: dict[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Resolve settings from defaults, the file, the environment, then `overrides`."""
    env = os.environ if environ is None else environ
    path = config_file or env.get("CAIRN_CONFIG_FILE")
    parser = configparser.ConfigParser(interpolation=None)
    if path:
        if not Path(path).is_file():
            raise InvalidInput(f"Configuration file {path} does not exist.", "config_file")
        parser.read(path)

    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw: str | None = env.get(option.env)
        source = option.env
        if raw is None and parser.has_option(option.section, option.name):
            raw = parser.get(option.section, option.name)
            source = f"[{option.section}] {option.name}"
        if raw is None or raw == "":
            values[option.name] = option.default
            continue
        try:
            values[option.name] = option.parse(raw)
        except ValueError as exc:
            raise InvalidInput(f"Invalid value for {source}: {exc}", option.name) from exc

    values.update({k: v for k, v in overrides.items() if v is not None})
    data_dir = Path(values.pop("data_dir") or _default_data_dir()).expanduser()
    database_url = values.pop("database_url") or f"sqlite:///{data_dir / 'cairn.sqlite'}"
    extra = {s: dict(parser.items(s)) for s in parser.sections()}
    targets = tuple(_target(section, extra[section]) for section in parser.sections()
                    if section.startswith(TARGET_SECTION))
    return Settings(data_dir=data_dir, database_url=database_url, targets=targets, extra=extra,
                    **values)


def _target(section: str, options: dict[str, str]) -> TargetSettings:
    name = section[len(TARGET_SECTION):].strip()
    if not name:
        raise InvalidInput(f"[{section}]: a target needs a name, as in [target:nfs1].", section)
    if not options.get("path"):
        raise InvalidInput(f"[{section}] path: required (where the target is mounted).", f"{section}.path")
    passphrase = options.get("passphrase_file")
    return TargetSettings(name=name, path=Path(options["path"]).expanduser(),
                          export=options.get("export") or None,
                          passphrase_file=Path(passphrase).expanduser() if passphrase else None)


def sample_config() -> str:
    """The sample configuration file: every option, commented out at its default."""
    lines = ["# Cairn configuration. Every option is shown at its default, commented out.",
             "# Each can also be set by the environment variable named beside it.", ""]
    section = None
    for option in OPTIONS:
        if option.section != section:
            section = option.section
            lines += [f"[{section}]", ""]
        for chunk in _wrap(option.help):
            lines.append(f"# {chunk}")
        default = "" if option.default is None else str(option.default)
        lines.append(f"# ({option.type_name}; environment: {option.env})")
        lines.append(f"#{option.name} = {default}")
        lines.append("")
    lines += ["# Backup targets: one section per target. Without any, Cairn keeps backups in",
              "# <data_dir>/targets/default. A workload is placed on the target with the most",
              "# free space unless an admin names one in metadata.backup_media_target.",
              "#[target:nfs1]",
              "# Where the target is mounted on this host (required).",
              "#path = /mnt/cairn-nfs1",
              "# The NFS export string clients know it by (the nfs_share list filter).",
              "#export = 192.0.2.10:/exports/cairn",
              "# Encrypt the repositories created on this target with this passphrase.",
              "#passphrase_file = /etc/cairn/nfs1.passphrase", ""]
    return "\n".join(lines)


def _wrap(text: str, width: int = 78) -> list[str]:
    out: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out
