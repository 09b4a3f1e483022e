#!/usr/bin/env bash
# A minimal Debian bookworm root (debootstrap --variant=minbase), built once per machine and
# kept in /var/cache/imagetrust-debootstrap (outside the repository, like the engine lab's
# cache): test/e2e/dist.test.ts installs the .deb and the .rpm's payload into copies of it,
# a host with no Node.js. Prints the root's path. IMAGETRUST_DEBOOTSTRAP_CACHE moves it.
set -euo pipefail
cache="${IMAGETRUST_DEBOOTSTRAP_CACHE:-/var/cache/imagetrust-debootstrap}"
root="$cache/bookworm-minbase"
if [ -f "$root/.complete" ]; then echo "$root"; exit 0; fi
command -v debootstrap >/dev/null || { echo "debootstrap: not installed (bash scripts/setup.sh installs it)" >&2; exit 1; }
# The host's own Debian mirror, so it works wherever apt does.
mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
mirror="${mirror:-http://deb.debian.org/debian}"
mkdir -p "$cache"
rm -rf "$root.tmp"
start=$(date +%s)
# No daemon a package ships may start while the root is made (there is none in minbase; to be sure).
debootstrap --variant=minbase bookworm "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
  || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
rm -rf "$root.tmp/var/cache/apt/archives/"*.deb "$root.tmp/var/lib/apt/lists/"*_Packages
touch "$root.tmp/.complete"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "debootstrap: $root made in $(( $(date +%s) - start )) s" >&2
echo "$root"
