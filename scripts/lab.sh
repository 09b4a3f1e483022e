#!/usr/bin/env bash
# The engine lab's front door (build it first: bash scripts/lab-build.sh).
#
#   scripts/lab.sh env                          the PATH line that puts .lab/bin first
#   scripts/lab.sh crio-up DIR --host-root R [--insecure-registry HOST:PORT]... [--pause-image REF]
#                                               a sandboxed CRI-O; prints its socket
#                                               (REF: an image whose /pause is .lab/bin/pause;
#                                               pods need it, and R's policy must accept it)
#   scripts/lab.sh crio-down DIR                stops its pods and CRI-O, by PID
#
# The sandboxed CRI-O reads the host configuration of R as a host reads its
# own: it runs in a private mount namespace where /etc and /var/lib are
# throw-away overlays, and R's etc/containers, etc/crio and etc/pki are bound
# over /etc/containers, /etc/crio and /etc/pki (created empty in R when
# missing). So `imagetrust apply --root R`
# configures it, crio.conf's signature_policy(_dir) paths mean what they mean on
# a host, and it re-reads R's policies on every pull. Its own state (storage,
# run dir, socket, logs, HOME) lives under DIR; storage is vfs, cgroups
# cgroupfs, runc from Debian, pinns from the lab, no hostport mapping, no NRI.
# This machine's /etc/containers, /etc/crio and /var/lib/containers are never written.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
labbin=$top/.lab/bin

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

need_lab() {
  for tool in crio pinns crictl; do
    [ -x "$labbin/$tool" ] || { echo "lab: $labbin/$tool is missing: build the lab with 'bash scripts/lab-build.sh'" >&2; exit 1; }
  done
}

crictl_at() { "$labbin/crictl" --runtime-endpoint "unix://$1/crio.sock" --timeout 20s "${@:2}"; }

crio_up() {
  local dir=$1 root="" insecure=() pause=127.0.0.1:9/imagetrust-lab/pause:none
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --host-root) root=$2; shift 2 ;;
      --insecure-registry) insecure+=("$2"); shift 2 ;;
      --pause-image) pause=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  [ -n "$root" ] || usage
  need_lab
  dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
  root=$(cd "$root" && pwd)
  if [ -f "$dir/crio.pid" ]; then
    local running started
    read -r running started < "$dir/crio.pid"
    [ "$(start_time "$running")" = "$started" ] && { echo "lab: a CRI-O already runs for $dir (pid $running)" >&2; exit 1; }
  fi
  mkdir -p "$dir"/{home,overlay/eu,overlay/ew,overlay/vu,overlay/vw,storage,run,logs,tmp,ns,exits,attach,cni,cni-bin,hooks,keys,cdi,runc}
  local binds=""
  # Bound directories must exist before CRI-O starts (files appear in them later,
  # when imagetrust applies): a missing one is created, empty, in R.
  for sub in containers crio pki; do
    local src=$root/etc/$sub
    mkdir -p "$src"
    binds+="mkdir -p /etc/$sub && mount --bind '$src' /etc/$sub"$'\n'
  done
  local script
  script=$(cat <<SCRIPT
set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir=$dir/overlay/eu,workdir=$dir/overlay/ew /etc
mount -t overlay overlay -o lowerdir=/var/lib,upperdir=$dir/overlay/vu,workdir=$dir/overlay/vw /var/lib
$binds
exec "\$@"
SCRIPT
)
  # Plain-HTTP loopback registries, in a registries.conf of the sandbox's own (R's, if any, is not read).
  : > "$dir/registries.conf"
  for registry in "${insecure[@]}"; do printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$registry" >> "$dir/registries.conf"; done
  mkdir -p "$dir/registries.conf.d"
  HOME=$dir/home unshare -m --propagation private sh -c "$script" crio-sandbox "$labbin/crio" \
    --log-level debug --log "$dir/crio.log" --log-dir "$dir/logs" \
    --root "$dir/storage" --runroot "$dir/run" --storage-driver vfs --listen "$dir/crio.sock" \
    --cgroup-manager cgroupfs --conmon-cgroup pod --conmon /usr/bin/conmon \
    --default-runtime runc --runtimes "runc:$(command -v runc):$dir/runc:oci" --pinns-path "$labbin/pinns" \
    --namespaces-dir "$dir/ns" --version-file "$dir/version" --version-file-persist "$dir/version-persist" \
    --clean-shutdown-file "$dir/clean.shutdown" --container-exits-dir "$dir/exits" \
    --container-attach-socket-dir "$dir/attach" --big-files-temporary-dir "$dir/tmp" \
    --irqbalance-config-file "$dir/irqbalance" --cdi-spec-dirs "$dir/cdi" --hooks-dir "$dir/hooks" \
    --decryption-keys-path "$dir/keys" --cni-config-dir "$dir/cni" --cni-plugin-dir "$dir/cni-bin" \
    --stream-address 127.0.0.1 --stream-port 0 --disable-hostport-mapping --enable-nri=false \
    --registries-conf "$dir/registries.conf" --registries-conf-dir "$dir/registries.conf.d" \
    --drop-infra-ctr --pause-image "$pause" \
    >"$dir/crio.out" 2>&1 &
  local pid=$!
  # With its start time: crio_down must not take a reused PID for CRI-O.
  echo "$pid $(start_time "$pid")" > "$dir/crio.pid"
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "lab: CRI-O exited at start:" >&2; tail -20 "$dir/crio.out" "$dir/crio.log" >&2 2>/dev/null || true
      rm -f "$dir/crio.pid"; exit 1
    fi
    if [ -S "$dir/crio.sock" ] && crictl_at "$dir" version >/dev/null 2>&1; then
      echo "unix://$dir/crio.sock"
      return 0
    fi
    sleep 0.1
  done
  echo "lab: CRI-O did not answer on $dir/crio.sock within 30 s" >&2
  crio_down "$dir"; exit 1
}

# A process's start time (field 22 of /proc/PID/stat), empty when it is gone.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  echo "$stat" | cut -d' ' -f20
}

# Every process in the mount namespace ns (conmon, containers), by PID.
namespace_pids() {
  local ns=$1 p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
  done
  return 0
}

# Stops CRI-O and every process left in its mount namespace. The namespace is named by a
# number the kernel hands out again as soon as it is freed (often to the very next
# `unshare -m`): a number read from a file once killed another test's chroot. So the
# namespace is held open (a file descriptor on it keeps it, and its number, alive) from
# before CRI-O is stopped until its last process is gone, and only a live CRI-O, with the
# start time recorded at crio-up, names it.
crio_down() {
  local dir=$1 pid started ns nsfd=""
  [ -f "$dir/crio.pid" ] || { echo "lab: no CRI-O was started for $dir" >&2; return 0; }
  read -r pid started < "$dir/crio.pid"
  if [ -n "$started" ] && [ "$(start_time "$pid")" = "$started" ]; then
    exec {nsfd}<"/proc/$pid/ns/mnt"
    ns=$(readlink "/proc/self/fd/$nsfd")
    # Still the namespace of the shell that started it (unshare not yet done): kill nothing but CRI-O.
    [ "$ns" = "$(readlink /proc/self/ns/mnt)" ] && ns=""
    # A container's PID 1 may ignore SIGTERM: stop them at once, then remove the pods.
    for c in $(crictl_at "$dir" ps -q 2>/dev/null); do crictl_at "$dir" stop --timeout 0 "$c" >/dev/null 2>&1 || true; done
    crictl_at "$dir" rmp --force --all >/dev/null 2>&1 || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    if [ -n "$ns" ]; then
      for p in $(namespace_pids "$ns"); do kill -KILL "$p" 2>/dev/null || true; done
      for _ in $(seq 1 100); do [ -z "$(namespace_pids "$ns")" ] && break; sleep 0.1; done
    fi
    exec {nsfd}<&-
  else
    echo "lab: CRI-O (pid $pid) was no longer running; processes it left, if any, are not stopped" >&2
  fi
  rm -f "$dir/crio.pid"
}

case ${1:-} in
  env) echo "export PATH=\"$labbin:\$PATH\"" ;;
  crio-up) [ $# -ge 2 ] || usage; shift; crio_up "$@" ;;
  crio-down) [ $# -eq 2 ] || usage; crio_down "$2" ;;
  *) usage ;;
esac
