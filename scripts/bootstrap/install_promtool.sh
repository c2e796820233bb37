#!/usr/bin/env bash
# `make tools-promtool`: make sure `promtool` (Prometheus' rule checker and rule unit-test runner)
# is on PATH. It comes with Debian's `prometheus` package; installed with apt-get when missing,
# as root or through passwordless sudo. Idempotent: does nothing when promtool is already there.
#
# Without root and sudo it prints one line saying what to do and exits 0, so the rest of
# `make setup` still runs; the promtool tests then skip with the same reason. An apt failure
# (network, broken lists) exits non-zero: CI must not silently lose the rule tests.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "tools-promtool: promtool is missing and neither root nor passwordless sudo is available: run 'sudo apt-get install --no-install-recommends prometheus' (or put promtool on PATH); the promtool tests skip until then." >&2
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "tools-promtool: promtool is missing and apt-get is not available: install promtool (Prometheus 2.x or 3.x) from your OS packages and put it on PATH." >&2
  exit 0
fi

echo "tools-promtool: installing Debian's prometheus package for promtool" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt-get (a fresh machine's own updates, a second make) may hold the dpkg lock: wait
# for it instead of failing the set-up.
APT=("${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600)
install() {
  "${APT[@]}" install -y --no-install-recommends prometheus >&2
}
# A fresh machine may have empty package lists: refresh them once and retry.
if ! install; then
  "${APT[@]}" update >&2
  install
fi
command -v promtool >/dev/null 2>&1 || { echo "tools-promtool: prometheus installed but promtool is not on PATH" >&2; exit 1; }
promtool --version 2>&1 | head -1 >&2
