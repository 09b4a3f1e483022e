#!/usr/bin/env bash
# The whole test suite: unit tests and e2e tests against real podman, skopeo,
# docker-registry and gpg. e2e tests need root (private mount namespaces).
#
# Two lanes run side by side, each one test file at a time: the unit tests and
# the e2e tests that wait on whole systems of their own (the SSH fleet, each
# host in its own mount namespace; the packages in their own Debian roots),
# beside every other e2e test. Nothing in the second lane touches what the
# first one's tests share (this machine's /etc/containers, /tmp/it-* scratch
# directories of verify): see the files themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
# The code's shape first: a linter, and the layers (no upward imports, no cycles).
npx tsc -p tsconfig.test.json   # tests and scripts too: a moved module breaks here, not at run time
npx eslint src test scripts bin
echo "lint: ok"
npx depcruise src --config .dependency-cruiser.cjs --output-type err

runner=(node --import tsx --test --test-concurrency=1 --test-reporter=spec)
if [ "$(id -u)" -ne 0 ]; then
  echo "test: not root, so the e2e tests (mount namespaces, real pulls) are skipped" >&2
  exec "${runner[@]}" test/unit/*.test.ts
fi

self_contained=(test/e2e/fleet.test.ts test/e2e/dist.test.ts)
shared=()
for file in test/e2e/*.test.ts; do
  case " ${self_contained[*]} " in *" $file "*) ;; *) shared+=("$file") ;; esac
done

main_log=$(mktemp /tmp/imagetrust-test-main.XXXXXX)
side_log=$(mktemp /tmp/imagetrust-test-side.XXXXXX)
"${runner[@]}" test/unit/*.test.ts "${self_contained[@]}" >"$side_log" 2>&1 &
side_pid=$!
trap 'kill "$side_pid" 2>/dev/null || true; rm -f "$main_log" "$side_log"' EXIT
main_status=0
"${runner[@]}" "${shared[@]}" 2>&1 | tee "$main_log" || main_status=$?
side_status=0
wait "$side_pid" || side_status=$?
echo
echo "== the second lane: unit tests, ${self_contained[*]} =="
cat "$side_log"

# One closing line for both lanes.
count() { grep -E "^ℹ $1 [0-9]+$" "$2" | awk '{s += $3} END {print s + 0}'; }
passed=$(( $(count pass "$main_log") + $(count pass "$side_log") ))
failed=$(( $(count fail "$main_log") + $(count fail "$side_log") ))
echo
echo "$passed passed, $failed failed"
[ "$main_status" -eq 0 ] && [ "$side_status" -eq 0 ] && [ "$failed" -eq 0 ]
