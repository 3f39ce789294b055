#!/usr/bin/env bash
# Starts the servers the test suite uses (PostgreSQL, MariaDB, RabbitMQ, libvirtd, Swift
# with its S3 API, and the development OpenStack) when they are not running already.
set -euo pipefail

port_open() { (echo >"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "start-services: nothing listens on port $1" >&2
  return 1
}

if ! port_open 5432; then
  echo "start-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  wait_port 5432
fi
if ! port_open 3306; then
  echo "start-services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port 3306
fi
if ! port_open 5672; then
  echo "start-services: starting RabbitMQ"
  rabbitmq-server -detached
  wait_port 5672
  # the port opens before the broker takes connections and rabbitmqctl answers
  for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
if ! pgrep -x libvirtd >/dev/null; then
  echo "start-services: starting libvirtd"
  # Without libvirt-daemon-system (which needs systemd and polkit) nothing made the
  # account the QEMU driver looks up, the log directory, or a qemu.conf; guests run as
  # root with no security driver, as the tests do.
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home --home-dir /var/lib/libvirt \
    --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
  mkdir -p /var/log/libvirt /var/run/libvirt
  if [[ ! -s /etc/libvirt/qemu.conf ]]; then
    printf '%s\n' 'user = "root"' 'group = "root"' 'security_driver = "none"' > /etc/libvirt/qemu.conf
  fi
  pgrep -x virtlogd >/dev/null || virtlogd -d
  libvirtd -d
  for _ in $(seq 1 60); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 1; done
  virsh -c qemu:///system version >/dev/null || { echo "start-services: libvirtd does not answer" >&2; exit 1; }
fi
# Swift's S3 API for the S3 target's tests (idempotent: instant when running, about 20 s
# from cold).
"$(dirname "$0")/swift-dev.sh" start
# The development OpenStack for the tests of platform = openstack (idempotent: a few
# seconds when running; see docs/openstack.md for the cold times).
"$(dirname "$0")/openstack-dev.sh" start
