#!/usr/bin/env bash
# Runs OpenStack Swift as one node on 127.0.0.1, with its S3 API (s3api middleware) and
# tempauth, for the S3 target's tests and benchmarks:
#
#   scripts/swift-dev.sh start|stop|status|env
#
# `start` is idempotent: it writes the configuration and the rings once, then starts
# whichever of memcached and the account, container, object and proxy servers is not
# running. Storage is a directory under $CAIRN_SWIFT_DIR (default /var/tmp/cairn-swift);
# Swift keeps object metadata in extended attributes, so that directory must be on a
# filesystem with user xattrs (ext4, xfs and tmpfs since Linux 6.6 have them; `start`
# checks). One replica, so the servers run without replicators, auditors or updaters.
#
# The S3 endpoint is http://127.0.0.1:$CAIRN_SWIFT_PORT (default 18080) with access key
# `cairn:tester`, secret key `testing`, region `us-east-1`; the same proxy also answers
# HTTPS on $CAIRN_SWIFT_TLS_PORT (default 18443) with a self-signed certificate, for
# clients that sign plain-HTTP uploads in aws-chunked encoding, which s3api refuses
# (restic). `env` prints those as shell assignments (CAIRN_S3_ENDPOINT=...,
# CAIRN_S3_TLS_ENDPOINT, CAIRN_S3_CA_BUNDLE) for the tests and bench/engine.py.
#
# More instances run side by side, each with a directory and ports of its own: set
# CAIRN_SWIFT_DIR, CAIRN_SWIFT_PORT, CAIRN_SWIFT_TLS_PORT, CAIRN_SWIFT_BASE_PORT (three
# ports from it) and CAIRN_SWIFT_MEMCACHE_PORT for every command on that instance. A
# test that stops its Swift (tests/swiftdev.py, `PrivateSwift`) does so with its own.
#
# The Debian packages (swift-proxy, swift-object, swift-container, swift-account,
# memcached) are installed by scripts/setup.sh.
set -euo pipefail

state=${CAIRN_SWIFT_DIR:-/var/tmp/cairn-swift}
proxy_port=${CAIRN_SWIFT_PORT:-18080}
tls_port=${CAIRN_SWIFT_TLS_PORT:-18443}
base_port=${CAIRN_SWIFT_BASE_PORT:-16210}   # object, container, account: base, +1, +2
memcache_port=${CAIRN_SWIFT_MEMCACHE_PORT:-16219}
etc=$state/etc
run=$state/run
log=$state/log
devices=$state/srv
servers=(account container object proxy proxy-tls)

port_open() { (echo >"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }

port_of() {
  case $1 in
    object) echo "$base_port" ;;
    container) echo $((base_port + 1)) ;;
    account) echo $((base_port + 2)) ;;
    proxy) echo "$proxy_port" ;;
    proxy-tls) echo "$tls_port" ;;
    memcached) echo "$memcache_port" ;;
  esac
}

running() {  # running NAME: its pid file names a live process
  [[ -f $run/$1.pid ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null
}

check_xattrs() {
  local probe=$devices/.xattr-probe
  : > "$probe"
  if ! /usr/bin/python3 -c "import os, sys; os.setxattr(sys.argv[1], 'user.cairn', b'1')" "$probe" 2>/dev/null; then
    rm -f "$probe"
    echo "swift-dev: $devices has no user extended attributes; set CAIRN_SWIFT_DIR to a directory on ext4, xfs or tmpfs" >&2
    exit 1
  fi
  rm -f "$probe"
}

write_config() {
  mkdir -p "$etc" "$run" "$log" "$devices/d1"
  check_xattrs
  [[ -f $etc/.complete ]] && return 0
  cat > "$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = cairn-dev
swift_hash_path_prefix = cairn-dev

[storage-policy:0]
name = Policy-0
default = yes
EOF
  local server
  for server in object container account; do
    cat > "$etc/$server-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $(port_of "$server")
workers = 1
user = root
swift_dir = $etc
devices = $devices
mount_check = false
log_name = $server-server
log_address = /nonexistent
log_level = WARNING

[pipeline:main]
pipeline = $server-server

[app:$server-server]
use = egg:swift#$server
EOF
  done
  # Two workers so one slow request (a large multipart completion) does not stall the
  # others; `allow_account_management` lets s3api create buckets.
  cat > "$etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $proxy_port
workers = 2
user = root
swift_dir = $etc
log_name = proxy-server
log_address = /nonexistent
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
dns_compliant_bucket_names = true

[filter:tempauth]
use = egg:swift#tempauth
user_cairn_tester = testing .admin

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcache_port
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
  for server in object container account; do
    local builder=$etc/$server.builder
    rm -f "$builder" "$etc/$server.ring.gz"
    swift-ring-builder "$builder" create 8 1 1 >/dev/null
    swift-ring-builder "$builder" add "r1z1-127.0.0.1:$(port_of "$server")/d1" 100 >/dev/null
    swift-ring-builder "$builder" rebalance >/dev/null
  done
  touch "$etc/.complete"
}

write_tls_config() {
  [[ -f $etc/proxy-tls-server.conf ]] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$etc/tls.key" -out "$etc/tls.crt" 2>/dev/null
  sed -e "s/^bind_port = .*/bind_port = $tls_port\ncert_file = ${etc//\//\\/}\/tls.crt\nkey_file = ${etc//\//\\/}\/tls.key/" \
    "$etc/proxy-server.conf" > "$etc/proxy-tls-server.conf.tmp"
  mv "$etc/proxy-tls-server.conf.tmp" "$etc/proxy-tls-server.conf"
}

start_one() {  # start_one NAME COMMAND...
  local name=$1; shift
  running "$name" && return 0
  start-stop-daemon --start --background --make-pidfile --pidfile "$run/$name.pid" \
    --output "$log/$name.log" --exec "$1" -- "${@:2}"
}

wait_up() {
  local name
  for name in memcached "${servers[@]}"; do
    for _ in $(seq 1 100); do port_open "$(port_of "$name")" && break; sleep 0.1; done
    port_open "$(port_of "$name")" || { echo "swift-dev: $name does not listen; see $log/$name.log" >&2; exit 1; }
  done
  # The proxy answers only once it has loaded its pipeline and rings.
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$proxy_port/healthcheck" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "swift-dev: the proxy does not answer /healthcheck; see $log/proxy.log" >&2
  exit 1
}

start() {
  command -v swift-proxy-server >/dev/null || {
    echo "swift-dev: OpenStack Swift is not installed; run scripts/setup.sh" >&2; exit 1; }
  write_config
  write_tls_config
  start_one memcached /usr/bin/memcached -u root -l 127.0.0.1 -p "$memcache_port" -U 0 -m 64
  local server
  for server in "${servers[@]}"; do
    start_one "$server" "/usr/bin/swift-${server%-tls}-server" "$etc/$server-server.conf" --verbose
  done
  wait_up
}

stop() {
  # SIGTERM to every server at once, then wait for all: a proxy finishing its requests
  # does not delay the others' exit.
  local name pid pids=()
  for name in proxy-tls proxy object container account memcached; do
    if running "$name"; then
      pid=$(cat "$run/$name.pid")
      kill "$pid"
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  done
  for name in proxy-tls proxy object container account memcached; do rm -f "$run/$name.pid"; done
}

status() {
  local name rc=0
  for name in memcached "${servers[@]}"; do
    if running "$name"; then echo "$name: running (pid $(cat "$run/$name.pid"), port $(port_of "$name"))"
    else echo "$name: stopped"; rc=3; fi
  done
  return $rc
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env)
    echo "CAIRN_S3_ENDPOINT=http://127.0.0.1:$proxy_port"
    echo "CAIRN_S3_ACCESS_KEY=cairn:tester"
    echo "CAIRN_S3_SECRET_KEY=testing"
    echo "CAIRN_S3_REGION=us-east-1"
    echo "CAIRN_S3_TLS_ENDPOINT=https://127.0.0.1:$tls_port"
    echo "CAIRN_S3_CA_BUNDLE=$etc/tls.crt"
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
