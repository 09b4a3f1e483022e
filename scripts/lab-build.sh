#!/usr/bin/env bash
# Builds the engine lab from Go modules into .lab/bin (git-ignored): CRI-O and
# pinns, crictl, skopeo, and the policy oracle once per containers/image
# version. Every binary is keyed by a hash of what it is built from (the
# lab/ go.mod and go.sum, the oracle's source, build tags, Go version) and kept
# in a per-machine cache, so a warm run, or a fresh clone on a machine that has
# built the lab before, builds nothing. Prints what it built and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
bin=$top/.lab/bin
build=$top/.lab/build
cache=${IMAGETRUST_LAB_CACHE:-}
if [ -z "$cache" ]; then
  if [ "$(id -u)" -eq 0 ]; then cache=/var/cache/imagetrust-lab; else cache=${XDG_CACHE_HOME:-$HOME/.cache}/imagetrust-lab; fi
fi
mkdir -p "$bin" "$build" "$cache"

if ! command -v go >/dev/null 2>&1; then
  echo "lab: Go is not installed (Go 1.26 or newer is needed to build the engine lab)" >&2
  exit 1
fi
image_tags="containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper"
crio_tags="$image_tags seccomp libsqlite3"
go_version=$(go env GOVERSION)
built=()
started=$(date +%s)

# key NAME TAGS FILE... : a hash of the inputs of one binary.
key() {
  local name=$1 tags=$2; shift 2
  { echo "$name $go_version $tags $*"; cat "$@"; } | sha256sum | cut -c1-16
}

# provide NAME KEY BUILD-FUNCTION [ARG...]: .lab/bin/NAME from the cache, or
# built into it (the function gets its ARGs and then the output path).
provide() {
  local name=$1 k=$2 fn=$3 cached="$cache/$1-$2"
  shift 3
  if [ -x "$bin/$name" ] && [ -f "$bin/.$name.key" ] && [ "$(cat "$bin/.$name.key")" = "$k" ]; then return 0; fi
  if [ ! -x "$cached" ]; then
    local t0; t0=$(date +%s)
    echo "lab: building $name"
    "$fn" "$@" "$cached.tmp"
    mv -f "$cached.tmp" "$cached"
    built+=("$name ($(( $(date +%s) - t0 )) s)")
  fi
  cp -f "$cached" "$bin/$name.tmp" && mv -f "$bin/$name.tmp" "$bin/$name"
  echo "$k" > "$bin/.$name.key"
}

build_crio() { (cd lab/crio && go build -trimpath -tags "$crio_tags" -o "$1" github.com/cri-o/cri-o/cmd/crio); }
build_crictl() { (cd lab/crictl && go build -trimpath -o "$1" sigs.k8s.io/cri-tools/cmd/crictl); }

# pinns is C, compiled from the CRI-O module's own pinns/src as its Makefile does.
build_pinns() {
  local dir
  dir=$(cd lab/crio && go list -m -f '{{.Dir}}' github.com/cri-o/cri-o)
  gcc -std=c99 -Os -Wall -Wextra -static -o "$1" "$dir"/pinns/src/*.c
}

build_pause() { gcc -std=c99 -Os -Wall -Wextra -static -o "$1" lab/pause/pause.c; }

# skopeo's module declares a path the proxy does not serve (go.podman.io/skopeo),
# so it is built as the main module from its verified module zip (lab/skopeo/module).
build_skopeo() {
  local mod version sum json dir
  read -r mod version sum < lab/skopeo/module
  json=$(cd lab/skopeo && GOFLAGS=-mod=mod go mod download -json "$mod@$version")
  dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json")
  grep -q "\"Sum\": \"$sum\"" <<<"$json" || { echo "lab: $mod@$version does not have the pinned checksum $sum" >&2; return 1; }
  rm -rf "$build/skopeo" && cp -r "$dir" "$build/skopeo" && chmod -R u+w "$build/skopeo"
  (cd "$build/skopeo" && go build -trimpath -tags "$image_tags" -o "$1" ./cmd/skopeo)
}

# The oracle's source, with the import path of this version's module.
build_oracle() {
  local version=$1 out=$2 dir=$build/oracle-$1 path
  path=$(grep -Eo '(github\.com/containers|go\.podman\.io)/image/v5' "lab/oracle/c-image-$version/go.mod" | head -1)
  rm -rf "$dir" && mkdir -p "$dir"
  cp "lab/oracle/c-image-$version/go.mod" "lab/oracle/c-image-$version/go.sum" "$dir/"
  sed "s#github.com/containers/image/v5#$path#g" lab/oracle/main.go > "$dir/main.go"
  (cd "$dir" && go build -trimpath -tags "$image_tags" -o "$out" .)
}

provide crio "$(key crio "$crio_tags" lab/crio/go.mod lab/crio/go.sum)" build_crio
provide pinns "$(key pinns gcc lab/crio/go.mod lab/crio/go.sum)" build_pinns
provide pause "$(key pause gcc lab/pause/pause.c)" build_pause
provide crictl "$(key crictl "" lab/crictl/go.mod lab/crictl/go.sum)" build_crictl
provide skopeo "$(key skopeo "$image_tags" lab/skopeo/module)" build_skopeo
for dir in lab/oracle/c-image-*; do
  v=${dir##*-}
  provide "policy-oracle-$v" "$(key "oracle-$v" "$image_tags" lab/oracle/main.go "$dir/go.mod" "$dir/go.sum")" build_oracle "$v"
done

if [ ${#built[@]} -gt 0 ]; then
  echo "lab: built ${built[*]} in $(( $(date +%s) - started )) s"
else
  echo "lab: up to date (.lab/bin)"
fi
