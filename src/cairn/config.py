"""Cairn's settings: one typed object, read from an INI file and `CAIRN_*` variables.

Every option is declared once, in `OPTIONS`, with its section, type, default and help
text; loading, the environment overrides and the sample file (`cairn config sample`,
kept as `etc/cairn.conf.sample`) are all derived from that list, so the documentation
cannot drift from the code.

Precedence, lowest first: the built-in default, the configuration file
(`--config-file`, else `$CAIRN_CONFIG_FILE`, else none), then the environment variable
named in the option (`CAIRN_<NAME>` for options of `[DEFAULT]`, `CAIRN_<SECTION>__<NAME>`
for the others, e.g. `CAIRN_KEYSTONE_AUTHTOKEN__PASSWORD`).
"""

from __future__ import annotations

import configparser
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import InvalidInput


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _parse_path(text: str) -> Path:
    return Path(text).expanduser()


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return value
    return parse


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
    Option("DEFAULT", "platform", _choice("local", "libvirt", "openstack"), "local",
           "Where instances come from: `local` (an operator-registered inventory), "
           "`libvirt` (the domains of this KVM host, see docs/libvirt.md) or `openstack` "
           "(the project's Nova servers, with auth_strategy = keystone; docs/openstack.md)."),
    Option("DEFAULT", "libvirt_uri", str, "qemu:///system",
           "libvirt connection URI of the `libvirt` platform."),
    Option("DEFAULT", "libvirt_shutdown_seconds", float, 120.0,
           "How long an in-place restore with power_off waits for a domain to shut down "
           "gracefully before it destroys (powers off) it.", "number"),
    Option("DEFAULT", "openstack_volume_mounts", _parse_list, ("/var/lib/nova/mnt", "/var/lib/cinder/mnt"),
           "Comma-separated directories under which this host mounts Cinder's file shares "
           "(Nova's and cinder-volume's `nfs_mount_point_base`): the `openstack` platform's "
           "restores write a new volume as `<dir>/<share hash>/volume-<id>`.", "list"),
    Option("DEFAULT", "backup_target_mount_dir", _parse_path, None,
           "Directory under which the NFS exports of backup targets created over the API are "
           "mounted on every Cairn host; a created target's mount path must lie inside it. "
           "Default: <data_dir>/mounts.", "path"),
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
    Option("DEFAULT", "auth_strategy", _choice("local", "keystone"), "local",
           "Who issues the tokens Cairn accepts: `local` (`cairn token create`, the "
           "embedded default) or `keystone` (an OpenStack Identity service, configured "
           "in [keystone_authtoken])."),
    Option("DEFAULT", "admin_role", str, "admin",
           "With auth_strategy = keystone: the Keystone role that makes its holder a Cairn "
           "administrator (Cairn's `admin` role in policy rules). A token's `admin` role "
           "counts only when this is `admin`."),
    Option("keystone_authtoken", "www_authenticate_uri", str, None,
           "Public Identity API endpoint clients are sent to in the WWW-Authenticate "
           "header of a 401 (for example https://keystone.example.com:5000). "
           "Default: auth_url."),
    Option("keystone_authtoken", "auth_url", str, None,
           "Identity API endpoint Cairn authenticates its own service user against "
           "(for example http://keystone.internal:5000/v3). Required with "
           "auth_strategy = keystone."),
    Option("keystone_authtoken", "auth_type", _choice("password"), "password",
           "Authentication plugin of the service user; `password` (Identity v3)."),
    Option("keystone_authtoken", "username", str, None, "The service user's name (required)."),
    Option("keystone_authtoken", "password", str, None, "The service user's password (required)."),
    Option("keystone_authtoken", "project_name", str, None,
           "Project the service user's token is scoped to, usually `service` (required)."),
    Option("keystone_authtoken", "user_domain_name", str, "Default", "Domain of the service user."),
    Option("keystone_authtoken", "project_domain_name", str, "Default",
           "Domain of project_name."),
    Option("keystone_authtoken", "region_name", str, None,
           "Region of the Identity endpoint used, and of the endpoints `cairn keystone "
           "register` creates."),
    Option("keystone_authtoken", "interface", _choice("public", "internal", "admin"), "internal",
           "Which catalog endpoint of the Identity service Cairn validates tokens through."),
    Option("keystone_authtoken", "token_cache_time", int, 300,
           "Seconds a validated token is trusted without asking Keystone again (never past "
           "the token's expiry). A token revoked in Keystone is refused at most this long "
           "after its revocation. 0 asks Keystone on every request.", "integer"),
    Option("keystone_authtoken", "http_connect_timeout", float, 5.0,
           "Seconds to wait for Keystone to answer before a request fails with 503.",
           "number"),
    Option("keystone_authtoken", "cafile", _parse_path, None,
           "PEM bundle of the certificate authorities to trust for Keystone's HTTPS. "
           "Default: the system's.", "path"),
    Option("keystone_authtoken", "insecure", _parse_bool, False,
           "Skip the verification of Keystone's HTTPS certificate (tests only).", "boolean"),
    Option("barbican", "barbican_endpoint", str, None,
           "The Key Manager (Barbican) that holds the secrets of encrypted workloads, for "
           "example http://barbican.internal:9311. Default: the `key-manager` endpoint of "
           "Keystone's catalog. Encrypted workloads need auth_strategy = keystone."),
    Option("barbican", "barbican_endpoint_type", _choice("public", "internal", "admin"), "public",
           "Which of the catalog's key-manager endpoints to use."),
    Option("barbican", "barbican_region_name", str, None,
           "Region of the key-manager endpoint. Default: [keystone_authtoken] region_name."),
    Option("trustee", "enabled", _parse_bool, True,
           "With auth_strategy = keystone: a workload created with a Keystone token gets a "
           "Keystone trust from its creator to Cairn's service user, through which scheduled "
           "snapshots act for the creator after the creating token expired "
           "(docs/deployment.md, \"Keystone trusts\").", "boolean"),
    Option("trustee", "trusted_roles", _parse_list, ("member",),
           "Comma-separated Keystone roles a workload's trust delegates to Cairn's service "
           "user, on the workload's project. The creator must hold every one of them there.",
           "list"),
)


KEYSTONE_SECTION = "keystone_authtoken"
BARBICAN_SECTION = "barbican"


@dataclass(frozen=True)
class BarbicanSettings:
    """The `[barbican]` section: where the secrets of encrypted workloads are read
    (castellan's option names); credentials are `[keystone_authtoken]`'s."""

    barbican_endpoint: str | None = None
    barbican_endpoint_type: str = "public"
    barbican_region_name: str | None = None


@dataclass(frozen=True)
class KeystoneAuthSettings:
    """The `[keystone_authtoken]` section: where Keystone is and who Cairn is there.

    Option names are keystonemiddleware's, so operators configure Cairn like every other
    OpenStack service.
    """

    www_authenticate_uri: str | None = None
    auth_url: str | None = None
    auth_type: str = "password"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    interface: str = "internal"
    token_cache_time: int = 300
    http_connect_timeout: float = 5.0
    cafile: Path | None = None
    insecure: bool = False

    @property
    def public_auth_uri(self) -> str:
        """What a 401's WWW-Authenticate header names."""
        return self.www_authenticate_uri or self.auth_url or ""

    def check(self) -> None:
        """Refuse a section that cannot authenticate, naming the first missing option."""
        for name in ("auth_url", "username", "password", "project_name"):
            if not getattr(self, name):
                raise InvalidInput(f"[{KEYSTONE_SECTION}] {name}: required with "
                                   "auth_strategy = keystone.", f"{KEYSTONE_SECTION}.{name}")
        if self.token_cache_time < 0:
            raise InvalidInput(f"[{KEYSTONE_SECTION}] token_cache_time: must be 0 or more "
                               "seconds.", f"{KEYSTONE_SECTION}.token_cache_time")


TRUSTEE_SECTION = "trustee"


@dataclass(frozen=True)
class TrusteeSettings:
    """The `[trustee]` section: the Keystone trusts that let scheduled work act for the
    user who created a workload (Cairn's service user is the trustee)."""

    enabled: bool = True
    trusted_roles: tuple[str, ...] = ("member",)

    def check(self) -> None:
        if self.enabled and not self.trusted_roles:
            raise InvalidInput(f"[{TRUSTEE_SECTION}] trusted_roles: name at least one role, or set "
                               "enabled = false.", f"{TRUSTEE_SECTION}.trusted_roles")


@dataclass(frozen=True)
class S3TargetSettings:
    """Where an S3 backup target lives: `bucket` (which must exist) under `prefix` at
    `endpoint`, signed with `access_key` and `secret_key` (docs/deployment.md)."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    prefix: str = ""
    region: str = "us-east-1"


@dataclass(frozen=True)
class TargetSettings:
    """A backup target from a `[target:NAME]` section.

    `type` is `filesystem` or `s3`. For a filesystem, `path` is where the target is
    mounted on this host (an NFS share's mount point, or any directory) and `export` the
    NFS export string (`host:/export`) clients know it by; for S3, `s3` says where the
    bucket is and `path` is None. `passphrase_file` encrypts the repositories Cairn
    creates on it.
    """

    name: str
    path: Path | None
    export: str | None = None
    passphrase_file: Path | None = None
    type: str = "filesystem"
    s3: S3TargetSettings | None = None


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
    libvirt_uri: str = "qemu:///system"
    libvirt_shutdown_seconds: float = 120.0
    openstack_volume_mounts: tuple[str, ...] = ("/var/lib/nova/mnt", "/var/lib/cinder/mnt")
    backup_target_mount_dir: Path | None = None
    max_request_body_bytes: int = 1024 * 1024
    max_list_limit: int = 1000
    worker_threads: int = 4
    job_lease_seconds: int = 60
    gc_wait_seconds: float = 10.0
    scheduler_interval_seconds: float = 30.0
    log_level: str = "INFO"
    transport_url: str = ""
    worker_name: str | None = None
    auth_strategy: str = "local"
    admin_role: str = "admin"
    keystone: KeystoneAuthSettings = field(default_factory=KeystoneAuthSettings)
    barbican: BarbicanSettings = field(default_factory=BarbicanSettings)
    trustee: TrusteeSettings = field(default_factory=TrusteeSettings)
    targets: tuple[TargetSettings, ...] = ()
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def target_mount_dir(self) -> Path:
        """Where created NFS targets are mounted (`backup_target_mount_dir`)."""
        return self.backup_target_mount_dir or self.data_dir / "mounts"

    @property
    def worker_host(self) -> str:
        """The name this process goes by as a worker (`worker_name`, else the host name)."""
        return self.worker_name or socket.gethostname()

    @property
    def www_authenticate_uri(self) -> str:
        """Where a 401 sends clients for a token: Keystone, or this service itself."""
        if self.auth_strategy == "keystone":
            return self.keystone.public_auth_uri
        return self.public_endpoint or ""

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
    sections: dict[str, dict[str, Any]] = {}
    for option in OPTIONS:
        into = values if option.section == "DEFAULT" else sections.setdefault(option.section, {})
        raw: str | None = env.get(option.env)
        source = option.env
        if raw is None and parser.has_option(option.section, option.name):
            raw = parser.get(option.section, option.name)
            source = f"[{option.section}] {option.name}"
        if raw is None or raw == "":
            into[option.name] = option.default
            continue
        try:
            into[option.name] = option.parse(raw)
        except ValueError as exc:
            field_name = option.name if option.section == "DEFAULT" else f"{option.section}.{option.name}"
            raise InvalidInput(f"Invalid value for {source}: {exc}", field_name) from exc

    values.update({k: v for k, v in overrides.items() if v is not None})
    data_dir = Path(values.pop("data_dir") or _default_data_dir()).expanduser()
    database_url = values.pop("database_url") or f"sqlite:///{data_dir / 'cairn.sqlite'}"
    extra = {s: dict(parser.items(s)) for s in parser.sections()}
    targets = tuple(_target(section, extra[section]) for section in parser.sections()
                    if section.startswith(TARGET_SECTION))
    keystone = KeystoneAuthSettings(**sections.get(KEYSTONE_SECTION, {}))
    trustee = TrusteeSettings(**sections.get(TRUSTEE_SECTION, {}))
    barbican = BarbicanSettings(**sections.get(BARBICAN_SECTION, {}))
    if values.get("auth_strategy") == "keystone":
        keystone.check()
        trustee.check()
    elif values.get("platform") == "openstack":
        raise InvalidInput("platform: 'openstack' asks Nova with the caller's Keystone token; set "
                           "auth_strategy = keystone.", "platform")
    return Settings(data_dir=data_dir, database_url=database_url, targets=targets, extra=extra,
                    keystone=keystone, barbican=barbican, trustee=trustee, **values)


def _target(section: str, options: dict[str, str]) -> TargetSettings:
    name = section[len(TARGET_SECTION):].strip()
    if not name:
        raise InvalidInput(f"[{section}]: a target needs a name, as in [target:nfs1].", section)
    passphrase = options.get("passphrase_file")
    passphrase_file = Path(passphrase).expanduser() if passphrase else None
    kind = (options.get("type") or "filesystem").strip().lower()
    if kind == "s3":
        return TargetSettings(name=name, path=None, passphrase_file=passphrase_file, type="s3",
                              s3=_s3_target(section, options))
    if kind != "filesystem":
        raise InvalidInput(f"[{section}] type: {kind!r} is not one of filesystem, s3.", f"{section}.type")
    if not options.get("path"):
        raise InvalidInput(f"[{section}] path: required (where the target is mounted).", f"{section}.path")
    return TargetSettings(name=name, path=Path(options["path"]).expanduser(),
                          export=options.get("export") or None, passphrase_file=passphrase_file)


def _s3_target(section: str, options: dict[str, str]) -> S3TargetSettings:
    """The S3 options of a `[target:NAME]` section with `type = s3`; the secret key may be
    given inline (`secret_key`) or, better, in a file only Cairn reads (`secret_key_file`)."""
    for required in ("endpoint", "bucket", "access_key"):
        if not options.get(required):
            raise InvalidInput(f"[{section}] {required}: required with type = s3.", f"{section}.{required}")
    endpoint = options["endpoint"].strip()
    if not endpoint.startswith(("http://", "https://")):
        raise InvalidInput(f"[{section}] endpoint: {endpoint!r} is not an http:// or https:// URL.",
                           f"{section}.endpoint")
    secret = options.get("secret_key")
    secret_file = options.get("secret_key_file")
    if bool(secret) == bool(secret_file):
        raise InvalidInput(f"[{section}] secret_key: give exactly one of secret_key and secret_key_file "
                           "with type = s3.", f"{section}.secret_key")
    if secret_file:
        try:
            secret = Path(secret_file).expanduser().read_text().strip()
        except OSError as exc:
            raise InvalidInput(f"[{section}] secret_key_file: cannot read {secret_file}: {exc.strerror}.",
                               f"{section}.secret_key_file") from None
    prefix = (options.get("prefix") or "").strip().strip("/")
    if any(part in ("", ".", "..") or part.startswith(".tmp-") for part in prefix.split("/")) and prefix:
        raise InvalidInput(f"[{section}] prefix: {prefix!r} must be a relative key without '.', '..', "
                           "empty or '.tmp-' segments.", f"{section}.prefix")
    return S3TargetSettings(endpoint=endpoint, bucket=options["bucket"].strip(), access_key=options["access_key"],
                            secret_key=str(secret), prefix=prefix,
                            region=(options.get("region") or "us-east-1").strip())


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
        if isinstance(option.default, tuple):
            default = ", ".join(option.default)
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
              "#passphrase_file = /etc/cairn/nfs1.passphrase",
              "# Set each target up once, with the share mounted: `cairn target init nfs1`",
              "# (Cairn writes only into a target whose cairn-target.json names it).", "",
              "# An S3 bucket (AWS S3, Ceph RGW, OpenStack Swift's s3api) counts as having the",
              "# most free space. The bucket must exist: Cairn never creates one.",
              "#[target:s3]",
              "#type = s3",
              "#endpoint = https://s3.example.com",
              "#bucket = cairn-backups",
              "# Keys go under this prefix of the bucket (default: none).",
              "#prefix = cairn",
              "#region = us-east-1",
              "#access_key = AKIAEXAMPLE",
              "# The secret key, in a file only Cairn reads (or inline: secret_key = ...).",
              "#secret_key_file = /etc/cairn/s3.secret",
              "#passphrase_file = /etc/cairn/s3.passphrase", ""]
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
