#!/usr/bin/env bash
# What --attribute costs a CPython target (docs/attribution.md): the request rate of a stdlib
# HTTP server and the call rate of tests/data/attribution/service.py's handler, without and with
# the sentinel's tracemalloc hook (PYTHONTRACEMALLOC=1, 3, 8), 5 interleaved rounds each; the
# median is what the page states. Needs a leak-sentinel binary (for the hook's text) and python3.
# Usage: contrib/attribution-overhead.sh [LEAK_SENTINEL_BINARY]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/release/leak-sentinel}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
# The hook exactly as a run writes it: a 1-second run with --attribute leaves it in its directory.
"$bin" --state-dir "$work/state" run --name hook --plain --attribute --warmup 1s --duration 1s \
  --check-every 1s --sample-every 200ms -- sleep 30 >/dev/null 2>&1 || true
hook="$work/state/runs/hook/attribution"
[ -f "$hook/sitecustomize.py" ] || { echo "no hook written in $hook" >&2; exit 1; }
cat > "$work/handler.py" <<PY
import sys, time
sys.path.insert(0, "$root/tests/data/attribution")
import service
n = 0
t0 = time.perf_counter()
while time.perf_counter() - t0 < 3.0:
    for _ in range(1000):
        service.handle(n, False)
        n += 1
print(round(n / (time.perf_counter() - t0)))
PY
cat > "$work/client.py" <<'PY'
import http.client, sys, time
port = int(sys.argv[1]); n = 0; t0 = time.perf_counter()
while time.perf_counter() - t0 < 4.0:
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/"); c.getresponse().read(); c.close(); n += 1
print(round(n / (time.perf_counter() - t0)))
PY
hooked() { env PYTHONPATH="$hook" LEAK_SENTINEL_ATTRIBUTION_DIR="$hook" PYTHONTRACEMALLOC="$1" "${@:2}"; }
server() { # FRAMES (0: no hook)
  local port=$((20000 + RANDOM % 20000)) pid
  if [ "$1" = 0 ]; then python3 -m http.server "$port" --bind 127.0.0.1 -d "$work" >/dev/null 2>&1 &
  else hooked "$1" python3 -m http.server "$port" --bind 127.0.0.1 -d "$work" >/dev/null 2>&1 & fi
  pid=$!
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
    sleep 0.1
  done
  python3 "$work/client.py" "$port"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "round  http_plain http_f1 http_f3 http_f8  handler_plain handler_f3"
for i in 1 2 3 4 5; do
  echo "$i  $(server 0) $(server 1) $(server 3) $(server 8)  $(python3 "$work/handler.py") $(hooked 3 python3 "$work/handler.py")"
done
