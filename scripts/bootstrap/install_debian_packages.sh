#!/usr/bin/env bash
# `make node-packages`: the Debian packages the real node and its images need, installed with
# apt-get when missing (as root: the real node itself needs root).
#   debootstrap     the images' Debian bookworm root filesystem
#   libseccomp-dev, pkg-config   runc's seccomp support (cgo), so RuntimeDefault is real
#   iptables, ipset, conntrack   kube-proxy's Service rules (and the NetworkPolicy engine)
# Idempotent: prints nothing and installs nothing when every package is there.
set -euo pipefail

missing=()
for package in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "node-packages: ${missing[*]} missing, and installing them needs root (the local cluster's real node runs as root too): run make as root, or 'sudo apt-get install --no-install-recommends ${missing[*]}'." >&2
  exit 1
fi
echo "node-packages: installing Debian's ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt-get (a fresh machine's own updates) may hold the dpkg lock: wait for it.
APT=(apt-get -o DPkg::Lock::Timeout=600)
if ! "${APT[@]}" install -y --no-install-recommends "${missing[@]}" >&2; then
  # A fresh machine may have empty package lists: refresh them once and retry.
  "${APT[@]}" update >&2
  "${APT[@]}" install -y --no-install-recommends "${missing[@]}" >&2
fi
