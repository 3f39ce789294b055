#!/usr/bin/env bash
# Installs what Cairn needs on a Debian machine (idempotent): system packages with
# apt-get, then the project, its test and lint tools and OpenStackClient (the `osc` extra,
# for `openstack workload ...`) into .venv (at the versions of
# constraints.txt), then the Keystone the tests run against into a virtual environment of
# its own.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install [apt-get option ...] -- package ...: installs those not installed yet.
apt_install() {
  local options=() missing=() package
  while [[ $1 != -- ]]; do options+=("$1"); shift; done
  shift
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  echo "setup: installing ${missing[*]}"
  local sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${options[@]}" "${missing[@]}" >/dev/null
}

packages=(qemu-utils python3-libnbd e2fsprogs)
if [[ "${CAIRN_SETUP_BENCH:-0}" == 1 ]]; then
  packages+=(restic borgbackup)
fi
apt_install -- "${packages[@]}"

# The libvirt platform and its tests: libvirtd with the QEMU driver, the Python binding,
# and what the test guest is built from (a Debian kernel package, busybox, cpio).
# Without recommends: they would pull every other hypervisor driver, LVM and a GUI.
apt_install --no-install-recommends -- libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
  qemu-system-x86 python3-libvirt busybox-static cpio
# The development OpenStack's guest image (a FAT disk booted by SYSLINUX) and its tools.
apt_install --no-install-recommends -- dosfstools syslinux syslinux-common mtools

# OpenStack Swift with its S3 API, the S3 target's test server (scripts/swift-dev.sh);
# about a minute from Debian's packages, which are not started here (no init system).
apt_install --no-install-recommends -- swift-proxy swift-object swift-container swift-account memcached curl openssl

# Chromium for the dashboard's browser tests (Playwright drives it through executable_path:
# `playwright install` cannot download browsers of its own here): 2 minutes on a machine
# without it (81 MB of packages, 290 MB installed), nothing once installed.
apt_install -- chromium

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
stamp=.venv/.cairn-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -c constraints.txt -e '.[test,lint,osc]'
  echo "$want" > "$stamp"
fi
# Byte-compiled once here, as an installed package would be: where PYTHONDONTWRITEBYTECODE
# is set, every `cairn` command would otherwise compile each module it imports again.
.venv/bin/python -m compileall -q src >/dev/null
if [[ "${CAIRN_SETUP_BENCH:-0}" == 1 && ! -x .venv/bin/py-spy ]]; then
  .venv/bin/pip install -q -c constraints.txt -e '.[test,lint,osc,bench]'
fi

# A real Keystone for the tests of auth_strategy = keystone and bench/api.py, in its own
# virtual environment, shared by every clone on this machine and made anew when its
# requirements change (about a minute).
# shared_venv DIR REQUIREMENTS LABEL [FINISH]: makes DIR a venv with REQUIREMENTS (then
# runs `FINISH DIR`) unless a complete one is there. Several clones may run this at once,
# so the work is done under a lock and DIR is marked complete only at the end.
shared_venv() {
  local dir=$1 requirements=$2 label=$3 finish=${4:-}
  [[ -f $dir/.cairn-complete ]] && return 0
  (
    flock 9
    [[ -f $dir/.cairn-complete ]] && exit 0
    echo "setup: installing $label into $dir"
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install -q -r "$requirements"
    [[ -z $finish ]] || "$finish" "$dir"
    touch "$dir/.cairn-complete"
  ) 9>"$dir.lock"
}

keystone_requirements=scripts/keystone-requirements.txt
keystone_venv=${CAIRN_KEYSTONE_VENV:-/var/tmp/cairn-keystone-$(sha256sum "$keystone_requirements" | cut -c1-12)}
shared_venv "$keystone_venv" "$keystone_requirements" Keystone

# A real Barbican (the OpenStack Key Manager) for the tests of encrypted workloads, in
# its own virtual environment shared by every clone on this machine, made anew when its
# requirements change (5 to 13 minutes on two busy cores).
barbican_requirements=scripts/barbican-requirements.txt
barbican_venv=${CAIRN_BARBICAN_VENV:-/var/tmp/cairn-barbican-$(sha256sum "$barbican_requirements" | cut -c1-12)}
shared_venv "$barbican_venv" "$barbican_requirements" Barbican

# The small real OpenStack of scripts/openstack-dev.sh (the tests of platform =
# openstack): Nova, Placement, Glance, Cinder, Neutron and Keystone from PyPI in one
# virtual environment, shared by every clone on this machine and made anew when its
# requirements change (2 to 10 minutes, 700 MB); the libvirt binding is Debian's.
openstack_requirements=scripts/openstack-requirements.txt
openstack_venv=${CAIRN_OPENSTACK_VENV:-/var/tmp/cairn-openstack-$(sha256sum "$openstack_requirements" | cut -c1-12)}
link_libvirt() {
  local site
  site=$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  ln -sf /usr/lib/python3/dist-packages/libvirt*.py /usr/lib/python3/dist-packages/libvirtmod*.so "$site/"
  "$1/bin/python" -c 'import libvirt' || { echo "setup: libvirt does not import in $1" >&2; exit 1; }
}
shared_venv "$openstack_venv" "$openstack_requirements" OpenStack link_libvirt
