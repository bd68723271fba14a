#!/usr/bin/env bash
# One entry point that sets everything up on a fresh machine, then runs what you asked for.
#   ./dev.sh server [ARGS…]   run `vigilops server` (embedded default config, data in ./data)
#   ./dev.sh test [PYTEST ARGS…]   run the whole test suite, peers (Prometheus, …) included
#   ./dev.sh bench [ARGS…]    run the benchmarks (see BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VIGILOPS_VENV:-.venv}"
PY="${PYTHON:-python3}"

ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$extras"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    if [ "$extras" = "base" ]; then
      "$VENV/bin/python" -m pip install --quiet -e .
    else
      "$VENV/bin/python" -m pip install --quiet -e ".[$extras]"
    fi
    touch "$stamp"
  fi
}

# The real Prometheus-ecosystem programs the comparison tests and benchmarks run against.
PEER_PACKAGES="prometheus victoria-metrics prometheus-node-exporter prometheus-alertmanager"
PEER_BINARIES="promtool prometheus victoria-metrics prometheus-node-exporter prometheus-alertmanager"

ensure_peers() {
  local missing=0 b
  for b in $PEER_BINARIES; do command -v "$b" >/dev/null 2>&1 || missing=1; done
  [ "$missing" = 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $PEER_PACKAGES >/dev/null
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  server)
    ensure_venv base
    exec "$VENV/bin/vigilops" server "$@"
    ;;
  test)
    ensure_venv test
    ensure_peers
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  bench)
    ensure_venv test
    ensure_peers
    exec "$VENV/bin/python" -m bench "$@"
    ;;
  *)
    echo "usage: ./dev.sh server|test|bench [ARGS…]" >&2
    exit 2
    ;;
esac
