#!/usr/bin/env bash
# The README's quick start on a fresh Debian 12 machine, as root, from a clone: set up the testbed
# (packages, dockerd, Open vSwitch, the test image), `npm ci` (builds the setns addon and plumb),
# then run the demo or the whole test suite. Services are left running for you to keep playing;
# `scripts/testbed.sh down` stops what was started.
#
#   scripts/quickstart.sh demo   set up, then node recipes/demo.mjs
#   scripts/quickstart.sh test   set up, then npm test (with coverage) and scripts/leak-check.sh
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
what=${1:-}
case $what in
  demo | test) ;;
  *)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac

step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

[[ $(id -u) -eq 0 ]] || { echo "quickstart: run as root (it installs packages and plumbs network namespaces)" >&2; exit 1; }

# Node is not a Debian 12 package in a usable version (bookworm ships 18): ask, don't guess a source.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "quickstart: node and npm are needed (Node >= 20.19), e.g. from https://nodejs.org or NodeSource" >&2
  exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "quickstart: Node >= 20.19 is needed, this is $(node --version)" >&2
  exit 1
fi

step "testbed: packages, dockerd, Open vSwitch, the plumb-test:busybox image"
scripts/testbed.sh up

step "npm ci (builds the setns addon with node-gyp, then plumb itself)"
npm ci --no-audit --no-fund

rc=0
case $what in
  demo)
    step "demo: node recipes/demo.mjs"
    node recipes/demo.mjs || rc=$?
    ;;
  test)
    baseline=$(mktemp /tmp/plumb-leaks-before.XXXXXX)
    scripts/leak-check.sh --save "$baseline"
    step "tests: npm test"
    npm test || rc=$?
    step "leak check: anything named pt-* left behind"
    scripts/leak-check.sh --except "$baseline" || rc=$((rc ? rc : 1))
    rm -f "$baseline"
    ;;
esac

step "done ($([[ $rc -eq 0 ]] && echo ok || echo "failed, exit $rc"))"
scripts/testbed.sh status
echo "The services stay up so you can keep playing (CLI: dist/plumb, or npm link for 'plumb')."
echo "Stop what the set-up started with: scripts/testbed.sh down"
exit "$rc"
