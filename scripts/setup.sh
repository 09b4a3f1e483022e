#!/usr/bin/env bash
# Installs what imagetrust's demo and tests need, only when missing:
# Debian packages (podman, skopeo, docker-registry, gnupg, rsync; runc for the containers
# audit's tests start; tmux and zsh for the terminal and completion tests), the npm packages,
# and with --lab the engine lab built from Go modules (scripts/lab-build.sh: CRI-O, crictl,
# skopeo, the policy oracles), which needs gcc, conmon and the libseccomp and libsqlite3 headers.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in podman:podman skopeo:skopeo docker-registry:docker-registry gpg:gnupg unshare:util-linux tar:tar newuidmap:uidmap ansible-playbook:ansible-core rsync:rsync tmux:tmux zsh:zsh runc:runc; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
for pkg in libseccomp-dev libsqlite3-dev pkg-config gcc libc6-dev conmon; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
# The host-agent tests (packages built with dpkg-deb and rpmbuild, checked by lintian and
# rpmlint, installed into a debootstrap root; a fleet of sshd hosts) and the metrics tests
# (promtool, node_exporter's textfile collector, scraped with curl).
for pair in debootstrap:debootstrap rpmbuild:rpm rpmlint:rpmlint lintian:lintian promtool:prometheus \
  prometheus-node-exporter:prometheus-node-exporter sshd:openssh-server ssh:openssh-client \
  openssl:openssl curl:curl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || [ -x "/usr/bin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # No daemon a package ships (sshd, prometheus, node_exporter) may start on install:
  # the tests start their own, on loopback ports, and stop them by PID.
  policy_rc=/usr/sbin/policy-rc.d
  made_policy_rc=""
  if [ ! -e "$policy_rc" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy_rc" >/dev/null && $sudo chmod 755 "$policy_rc" && made_policy_rc=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$made_policy_rc" ] || $sudo rm -f "$policy_rc"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "${1:-}" = "--lab" ]; then bash scripts/lab-build.sh; fi
