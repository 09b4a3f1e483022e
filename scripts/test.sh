#!/usr/bin/env bash
# The whole test suite: unit tests and e2e tests against real podman, skopeo,
# docker-registry and gpg. e2e tests need root (private mount namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
# The code's shape first: a linter, and the layers (no upward imports, no cycles).
npx tsc -p tsconfig.test.json   # tests and scripts too: a moved module breaks here, not at run time
npx eslint src test scripts bin packaging
echo "lint: ok"
npx depcruise src --config .dependency-cruiser.cjs --output-type err
files=(test/unit/*.test.ts)
if [ "$(id -u)" -eq 0 ]; then
  files+=(test/e2e/*.test.ts)
else
  echo "test: not root, so the e2e tests (mount namespaces, real pulls) are skipped" >&2
fi
exec node --import tsx --test --test-reporter=spec "${files[@]}"
