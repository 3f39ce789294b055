#!/usr/bin/env bash
# A small real OpenStack on this machine, for the tests of platform = openstack:
# Keystone, Placement, Nova (api, conductor, scheduler, compute on libvirt/QEMU), Glance,
# Neutron (ML2, no agents) and Cinder (NFS driver on a local directory).
#
#   scripts/openstack-dev.sh start    configure once, then start what is not running
#   scripts/openstack-dev.sh stop     stop every service (state and databases are kept)
#   scripts/openstack-dev.sh status   which services run; exit 1 if one does not
#   scripts/openstack-dev.sh reset    stop, drop the databases and the state
#
# Everything comes from one virtual environment (scripts/setup.sh makes it from
# scripts/openstack-requirements.txt); databases on the local MariaDB (root, no
# password), RPC on the local RabbitMQ (guest/guest, a vhost of its own), state, logs and
# configuration under $CAIRN_OPENSTACK_STATE (/var/tmp/cairn-openstack). Credentials
# for the tests and tools are in $STATE/clouds.yaml (clouds `admin`, `alpha`, `beta`).
# docs/openstack.md says what runs and why each workaround is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
requirements=$here/openstack-requirements.txt
VENV=${CAIRN_OPENSTACK_VENV:-/var/tmp/cairn-openstack-$(sha256sum "$requirements" | cut -c1-12)}
STATE=${CAIRN_OPENSTACK_STATE:-/var/tmp/cairn-openstack}
PY=$VENV/bin/python
SITE=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
ETC=$STATE/etc
RUN=$STATE/run
LOG=$STATE/log
DB_PREFIX=cairnos_
VHOST=cairn-openstack
TRANSPORT=rabbit://guest:guest@127.0.0.1:5672/$VHOST
PASSWORD=cairn-openstack-secret
HOST=${CAIRN_OPENSTACK_HOST:-cairn-compute-1}
KEYSTONE_PORT=5000 NOVA_PORT=8774 PLACEMENT_PORT=8778 GLANCE_PORT=9292 CINDER_PORT=8776 NEUTRON_PORT=9696
AUTH_URL=http://127.0.0.1:$KEYSTONE_PORT/v3
# The NFS "server": a local directory, presented to Cinder and Nova as an NFS share.
EXPORT=$STATE/nfs-export
SHARE=127.0.0.1:$EXPORT
# Bump CONFIG_VERSION when a change to the configuration below needs the state and the
# databases made anew; new requirements do so by themselves.
CONFIG_VERSION=2
# by content alone: every clone of the same commit finds the state it configured
config_stamp=$(cat <(echo "$CONFIG_VERSION") "$requirements" "$here/openstack-dev/cairn_dev_binder.py" | sha256sum | cut -c1-16)

API_SERVICES=(keystone placement nova-api glance-api cinder-api neutron-server)
ALL_SERVICES=("${API_SERVICES[@]}" nova-conductor nova-scheduler nova-compute cinder-scheduler cinder-volume
              cinder-backup)

say() { echo "openstack-dev: $*" >&2; }
die() { say "$*"; exit 1; }
port_open() { (echo >"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }
pid_alive() { [[ -f $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
mysql_do() { mariadb -uroot -h127.0.0.1 -e "$1"; }

port_of() {
  case $1 in
    keystone) echo $KEYSTONE_PORT ;; placement) echo $PLACEMENT_PORT ;; nova-api) echo $NOVA_PORT ;;
    glance-api) echo $GLANCE_PORT ;; cinder-api) echo $CINDER_PORT ;; neutron-server) echo $NEUTRON_PORT ;;
    *) echo "" ;;
  esac
}

# -- one-time configuration ------------------------------------------------------------

authtoken() {  # the [keystone_authtoken] section of service $1
  cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$KEYSTONE_PORT
auth_url = $AUTH_URL
auth_type = password
username = $1
password = $PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
EOF
}

service_auth() {  # a keystoneauth section [$1] acting as service user $2
  cat <<EOF
[$1]
auth_type = password
auth_url = $AUTH_URL
username = $2
password = $PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
EOF
}

db_url() { echo "mysql+pymysql://root@127.0.0.1/${DB_PREFIX}$1?charset=utf8"; }

write_shims() {
  mkdir -p "$STATE/bin"
  # No sudo binary here and the services run as root: oslo.privsep and the root helpers
  # call `sudo [options] X-rootwrap CONF command ...`; run the command itself.
  cat >"$STATE/bin/sudo" <<'EOF'
#!/bin/bash
while [[ $# -gt 0 ]]; do
  case $1 in
    -u|-g|-C|-D|-h|-p|-r|-t|-U) shift 2 ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
[[ ${1:-} == *-rootwrap ]] && shift 2
exec "$@"
EOF
  # No NFS client in this kernel: an NFS mount of HOST:/DIR is a bind mount of DIR (the
  # share is on this host); anything else goes to the real mount.
  cat >"$STATE/bin/mount" <<'EOF'
#!/bin/bash
nfs=0 rest=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -t) [[ $2 == nfs* ]] && nfs=1; rest+=("$1" "$2"); shift 2 ;;
    -o) shift 2 ;;
    *) rest+=("$1"); shift ;;
  esac
done
if ((nfs)); then
  n=${#rest[@]}; source=${rest[n-2]}; target=${rest[n-1]}
  mkdir -p "$target"
  exec /bin/mount --bind "${source#*:}" "$target"
fi
exec /bin/mount "${rest[@]}"
EOF
  # Cinder's NFS driver checks that the NFS mount helper is installed.
  printf '#!/bin/sh\nexit 0\n' >"$STATE/bin/mount.nfs"
  chmod +x "$STATE/bin/"*
}

write_wsgi() {  # the gunicorn entry points: oslo.config must not see gunicorn's argv
  mkdir -p "$STATE/wsgi"
  printf 'import sys\nsys.argv = sys.argv[:1]\nfrom keystone.server import wsgi  # noqa\napplication = wsgi.initialize_public_application()\n' \
    >"$STATE/wsgi/keystone_wsgi.py"
  local pair
  for pair in placement:placement.wsgi.api nova:nova.wsgi.osapi_compute glance:glance.wsgi.api; do
    printf 'import sys\nsys.argv = sys.argv[:1]\nfrom %s import application  # noqa\n' "${pair#*:}" \
      >"$STATE/wsgi/${pair%%:*}_wsgi.py"
  done
  # Cinder's application reads its configuration from the command line alone.
  printf 'import sys\nsys.argv = sys.argv[:1] + ["--config-file", "%s"]\nfrom cinder.wsgi.api import application  # noqa\n' \
    "$ETC/cinder/cinder.conf" >"$STATE/wsgi/cinder_wsgi.py"
  # Neutron's mappers are configured lazily; configure them after the plugins are loaded
  # so that the Port model knows the relationships of every loaded extension.
  cat >"$STATE/wsgi/neutron_wsgi.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from neutron.wsgi.api import application  # noqa
import neutron.db.models.port_forwarding  # noqa
import sqlalchemy.orm
sqlalchemy.orm.configure_mappers()
EOF
}

install_binder() {  # the ML2 mechanism driver that binds ports without agents
  cp "$here/openstack-dev/cairn_dev_binder.py" "$SITE/cairn_dev_binder.py"
  local dist=$SITE/cairn_dev_binder-1.0.dist-info
  mkdir -p "$dist"
  printf 'Metadata-Version: 2.1\nName: cairn-dev-binder\nVersion: 1.0\n' >"$dist/METADATA"
  printf '[neutron.ml2.mechanism_drivers]\ncairn_tap = cairn_dev_binder:TapBinder\n' >"$dist/entry_points.txt"
  : >"$dist/RECORD"
}

write_configs() {
  mkdir -p "$ETC"/{keystone,nova,placement,glance,cinder,neutron} "$STATE"/{nova,cinder,glance,neutron,keystone}
  mkdir -p "$STATE/glance/images" "$STATE/glance/staging" "$STATE/glance/tasks" "$EXPORT" "$LOG" "$RUN" \
    "$STATE/nova/instances"

  cat >"$ETC/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOG/keystone.log
[database]
connection = $(db_url keystone)
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys
[credential]
key_repository = $STATE/keystone/credential-keys
[token]
provider = fernet
expiration = 3600
[identity]
# A development cloud on two busy cores: cheap password hashes (every token costs one).
password_hash_rounds = 4
EOF

  cat >"$ETC/placement/placement.conf" <<EOF
[DEFAULT]
log_file = $LOG/placement.log
[api]
auth_strategy = keystone
[placement_database]
connection = $(db_url placement)
$(authtoken placement)
EOF

  cat >"$ETC/nova/nova.conf" <<EOF
[DEFAULT]
transport_url = $TRANSPORT
my_ip = 127.0.0.1
host = $HOST
state_path = $STATE/nova
instances_path = $STATE/nova/instances
compute_driver = libvirt.LibvirtDriver
rootwrap_config = $VENV/etc/nova/rootwrap.conf
vif_plugging_is_fatal = False
vif_plugging_timeout = 0
reserved_host_memory_mb = 0
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $ETC/nova/api-paste.ini
[api_database]
connection = $(db_url nova_api)
[database]
connection = $(db_url nova)
$(authtoken nova)
$(service_auth placement nova)
$(service_auth neutron nova)
$(service_auth cinder nova)
os_region_name = RegionOne
# Neutron lets a member's request delete a server's port only with Nova's service token.
$(service_auth service_user nova)
send_service_user_token = True
[glance]
region_name = RegionOne
[libvirt]
virt_type = qemu
connection_uri = qemu:///system
cpu_mode = none
nfs_mount_point_base = $STATE/nova/mnt
[vnc]
enabled = False
[spice]
enabled = False
[serial_console]
enabled = False
[scheduler]
discover_hosts_in_cells_interval = 5
workers = 1
[conductor]
workers = 1
[compute]
heal_instance_info_cache_interval = -1
[oslo_concurrency]
lock_path = $STATE/nova/lock
EOF

  cat >"$ETC/glance/glance-api.conf" <<EOF
[DEFAULT]
log_file = $LOG/glance-api.log
enabled_backends = fs:file
[database]
connection = $(db_url glance)
$(authtoken glance)
[paste_deploy]
flavor = keystone
config_file = $ETC/glance/glance-api-paste.ini
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $STATE/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $STATE/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $STATE/glance/tasks
[oslo_concurrency]
lock_path = $STATE/glance/lock
EOF

  # The API services look for their paste files beside their configuration.
  cp "$VENV/etc/nova/api-paste.ini" "$ETC/nova/"
  cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
  cp "$VENV/etc/cinder/api-paste.ini" "$ETC/cinder/"
  cp "$VENV/etc/neutron/api-paste.ini" "$ETC/neutron/"
  echo "$SHARE" >"$ETC/cinder/nfs_shares"
  cat >"$ETC/cinder/cinder.conf" <<EOF
[DEFAULT]
transport_url = $TRANSPORT
my_ip = 127.0.0.1
host = $HOST
state_path = $STATE/cinder
auth_strategy = keystone
api_paste_config = $ETC/cinder/api-paste.ini
rootwrap_config = $VENV/etc/cinder/rootwrap.conf
enabled_backends = nfs1
default_volume_type = nfs1
osapi_volume_workers = 1
[database]
connection = $(db_url cinder)
$(authtoken cinder)
$(service_auth nova cinder)
[nfs1]
volume_driver = cinder.volume.drivers.nfs.NfsDriver
volume_backend_name = nfs1
nfs_shares_config = $ETC/cinder/nfs_shares
nfs_mount_point_base = $STATE/cinder/mnt
nfs_sparsed_volumes = True
nfs_qcow2_volumes = True
nfs_snapshot_support = True
nas_secure_file_operations = False
nas_secure_file_permissions = False
[oslo_concurrency]
lock_path = $STATE/cinder/lock
EOF

  cat >"$ETC/neutron/neutron.conf" <<EOF
[DEFAULT]
transport_url = $TRANSPORT
log_file = $LOG/neutron-server.log
host = $HOST
state_path = $STATE/neutron
core_plugin = ml2
service_plugins =
auth_strategy = keystone
api_paste_config = $ETC/neutron/api-paste.ini
notify_nova_on_port_status_changes = False
notify_nova_on_port_data_changes = False
[database]
connection = $(db_url neutron)
$(authtoken neutron)
$(service_auth nova neutron)
[oslo_concurrency]
lock_path = $STATE/neutron/lock
EOF
  cat >"$ETC/neutron/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers = cairn_tap
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
EOF
}

sync_databases() {
  local db
  for db in keystone placement nova_api nova nova_cell0 glance cinder neutron; do
    mysql_do "DROP DATABASE IF EXISTS ${DB_PREFIX}$db; CREATE DATABASE ${DB_PREFIX}$db CHARACTER SET utf8mb4"
  done
  rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
  rabbitmqctl -q add_vhost "$VHOST" >/dev/null
  rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
  local km=("$VENV/bin/keystone-manage" --config-file "$ETC/keystone/keystone.conf")
  local owner=(--keystone-user root --keystone-group root)
  "${km[@]}" db_sync &
  "${km[@]}" fernet_setup "${owner[@]}"
  "${km[@]}" credential_setup "${owner[@]}"
  wait
  "${km[@]}" bootstrap --bootstrap-password "$PASSWORD" --bootstrap-admin-url "$AUTH_URL" \
    --bootstrap-public-url "$AUTH_URL" --bootstrap-internal-url "$AUTH_URL" --bootstrap-region-id RegionOne
  local nm=("$VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf")
  "$VENV/bin/placement-manage" --config-file "$ETC/placement/placement.conf" db sync &
  "$VENV/bin/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync >/dev/null &
  "$VENV/bin/cinder-manage" --config-file "$ETC/cinder/cinder.conf" db sync &
  "$VENV/bin/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" \
    --config-file "$ETC/neutron/ml2_conf.ini" upgrade heads >/dev/null &
  "${nm[@]}" api_db sync
  "${nm[@]}" cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)"
  "${nm[@]}" cell_v2 create_cell --name cell1 >/dev/null
  "${nm[@]}" db sync
  wait
}

configure() {
  [[ -x $PY ]] || die "no OpenStack virtual environment at $VENV: run scripts/setup.sh first"
  say "configuring under $STATE (databases ${DB_PREFIX}*, RabbitMQ vhost $VHOST)"
  stop_all
  unmount_all
  rm -rf "$STATE"
  mkdir -p "$STATE" "$LOG" "$RUN"
  write_shims
  write_wsgi
  install_binder
  write_configs
  sync_databases 2>>"$LOG/configure.log" >>"$LOG/configure.log" || die "database set-up failed: see $LOG/configure.log"
  echo "$config_stamp" >"$STATE/.configured"
}

# -- processes ---------------------------------------------------------------------------

service_env() {
  env "${SERVICE_ENV[@]}" "$@"
}

SERVICE_ENV=(PATH="$STATE/bin:$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    OS_KEYSTONE_CONFIG_FILES="$ETC/keystone/keystone.conf" \
    OS_PLACEMENT_CONFIG_DIR="$ETC/placement" OS_NOVA_CONFIG_DIR="$ETC/nova" \
    OS_GLANCE_CONFIG_DIR="$ETC/glance" OS_CINDER_CONFIG_DIR="$ETC/cinder" \
    OS_NEUTRON_CONFIG_DIR="$ETC/neutron" OS_NEUTRON_CONFIG_FILES="$ETC/neutron/neutron.conf;$ETC/neutron/ml2_conf.ini")

command_of() {
  local gunicorn=("$VENV/bin/gunicorn" --chdir "$STATE/wsgi" --workers 1 --threads 4 --timeout 300
                  --bind "127.0.0.1:$(port_of "$1")" --control-socket "$RUN/$1.ctl")
  case $1 in
    keystone) echo "${gunicorn[*]} keystone_wsgi:application" ;;
    placement) echo "${gunicorn[*]} placement_wsgi:application" ;;
    nova-api) echo "${gunicorn[*]} nova_wsgi:application" ;;
    glance-api) echo "${gunicorn[*]} glance_wsgi:application" ;;
    cinder-api) echo "${gunicorn[*]} cinder_wsgi:application" ;;
    neutron-server) echo "${gunicorn[*]} neutron_wsgi:application" ;;
    nova-*) echo "$VENV/bin/$1 --config-file $ETC/nova/nova.conf --log-file $LOG/$1.log" ;;
    cinder-backup) echo "$VENV/bin/$1 --config-file $ETC/cinder/cinder.conf --config-file $ETC/cinder/backup.conf" \
                     "--log-file $LOG/$1.log" ;;
    cinder-*) echo "$VENV/bin/$1 --config-file $ETC/cinder/cinder.conf --log-file $LOG/$1.log" ;;
  esac
}

start_one() {
  pid_alive "$1" && return 0
  # A session of its own (stop ends its process group); the pid file names its leader.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$1.pid" env "${SERVICE_ENV[@]}" $(command_of "$1") \
    </dev/null >>"$LOG/$1.out" 2>&1 &
  for _ in $(seq 1 50); do [[ -s $RUN/$1.pid ]] && break; sleep 0.1; done
}

wait_ports() {
  local svc port
  for svc in "$@"; do
    port=$(port_of "$svc")
    [[ -n $port ]] || continue
    for _ in $(seq 1 120); do
      port_open "$port" && break
      pid_alive "$svc" || die "$svc exited: see $LOG/$svc.out"
      sleep 0.5
    done
    port_open "$port" || die "$svc does not listen on $port: see $LOG/$svc.out"
  done
}

stop_all() {
  local svc pid
  for svc in "${ALL_SERVICES[@]}"; do
    if pid_alive "$svc"; then
      pid=$(cat "$RUN/$svc.pid")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for svc in "${ALL_SERVICES[@]}"; do
    for _ in $(seq 1 40); do pid_alive "$svc" || break; sleep 0.25; done
    if pid_alive "$svc"; then
      pid=$(cat "$RUN/$svc.pid")
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$svc.pid"
  done
}

unmount_all() {
  # Nova's and Cinder's share mounts, then the shared mount base.
  local mp
  while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
  done < <(awk -v s="$STATE/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

prepare_mounts() {
  # libvirt starts each QEMU in a mount namespace of its own, a copy made when the guest
  # starts: a share Nova mounts later (a volume attached to a running guest) reaches that
  # namespace only if the mount base is a shared mount.
  local base=$STATE/nova/mnt
  mkdir -p "$base" "$STATE/cinder/mnt"
  if ! mountpoint -q "$base"; then
    mount --bind "$base" "$base"
    mount --make-rshared "$base"
  fi
}

write_backup_config() {
  # Cinder's own backups (bench/openstack.py compares Cairn with them): the posix driver
  # into a local directory. A file of its own, read by cinder-backup alone and written on
  # every start, so that an environment configured before it gains the service without
  # being configured anew.
  mkdir -p "$STATE/cinder/backups"
  cat >"$ETC/cinder/backup.conf" <<EOF
[DEFAULT]
backup_driver = cinder.backup.drivers.posix.PosixBackupDriver
backup_posix_path = $STATE/cinder/backups
EOF
}

populate() {  # scripts/openstack-dev/populate.py, phase $1
  service_env "$PY" "$here/openstack-dev/populate.py" "$1" --state "$STATE" --auth-url "$AUTH_URL" \
    --password "$PASSWORD" --host "$HOST" --nova-manage "$VENV/bin/nova-manage --config-file $ETC/nova/nova.conf" \
    --cairn-root "$(dirname "$here")" 2>>"$LOG/populate.log" || die "populating ($1) failed: see $LOG/populate.log"
}

start_all() {
  [[ -x $PY ]] || die "no OpenStack virtual environment at $VENV: run scripts/setup.sh first"
  if [[ ! -f $STATE/.configured || $(cat "$STATE/.configured") != "$config_stamp" ]]; then
    configure
  fi
  mkdir -p "$RUN" "$LOG"
  # Everything runs and was filled in since it started: nothing to do.
  if [[ -f $RUN/.contents ]] && status >/dev/null; then return 0; fi
  rm -f "$RUN/.contents"
  port_open 3306 || die "MariaDB does not run (scripts/start-services.sh starts it)"
  port_open 5672 || die "RabbitMQ does not run (scripts/start-services.sh starts it)"
  pgrep -x libvirtd >/dev/null || die "libvirtd does not run (scripts/start-services.sh starts it)"
  prepare_mounts
  write_backup_config
  start_one keystone
  wait_ports keystone
  # The other services authenticate to Keystone as they start: their users come first.
  if [[ ! -f $STATE/.identity ]]; then populate identity && touch "$STATE/.identity"; fi
  local svc
  for svc in placement glance-api neutron-server cinder-api nova-api; do start_one "$svc"; done
  for svc in nova-conductor nova-scheduler cinder-scheduler cinder-volume cinder-backup nova-compute; do
    start_one "$svc"
  done
  wait_ports placement glance-api neutron-server cinder-api nova-api
  # Idempotent: fills in what is missing and waits for the compute host to be usable.
  populate contents
  touch "$RUN/.contents"
  status >/dev/null || { status >&2; die "a service stopped: see $LOG"; }
}

status() {
  local svc bad=0
  for svc in "${ALL_SERVICES[@]}"; do
    if pid_alive "$svc"; then echo "$svc: running (pid $(cat "$RUN/$svc.pid"))"
    else echo "$svc: stopped"; bad=1; fi
  done
  return $bad
}

case ${1:-} in
  start)
    started=$(date +%s)
    start_all
    say "running ($(($(date +%s) - started)) s); credentials in $STATE/clouds.yaml"
    ;;
  stop) stop_all; unmount_all; rm -f "$RUN/.contents" ;;
  status) status ;;
  reset)
    stop_all; unmount_all
    for db in keystone placement nova_api nova nova_cell0 glance cinder neutron; do
      mysql_do "DROP DATABASE IF EXISTS ${DB_PREFIX}$db" || true
    done
    rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
    rm -rf "$STATE"
    ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
