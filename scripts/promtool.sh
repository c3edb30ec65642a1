#!/usr/bin/env bash
# Prints the path of promtool (Prometheus' rule checker and rule unit-test runner). When it is
# missing and this runs as root on Debian, installs Debian's `prometheus` package first with
# every service start denied (policy-rc.d), so no Prometheus server is left running and the
# install succeeds on a machine without systemd.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool is missing: install Debian's prometheus package (as root: apt-get install prometheus)" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
install_prometheus() {
  DEBIAN_FRONTEND=noninteractive apt-get install --yes --quiet --no-install-recommends \
    prometheus >&2
}

echo "installing promtool (apt-get install prometheus; its server is not started)" >&2
if [ ! -e "$policy" ]; then
  # 101 means "action forbidden": invoke-rc.d and deb-systemd-invoke start nothing.
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
# A fresh machine may have no (or stale) package lists: refresh them once and try again.
install_prometheus || { apt-get update --quiet >&2 && install_prometheus; }
if [ -d /run/systemd/system ]; then
  systemctl disable --now prometheus.service >&2 || true
fi
command -v promtool
