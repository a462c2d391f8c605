#!/usr/bin/env bash
# The sentinel measured like any target: sentinel A samples a clean workload every 50 ms (20× the
# quick profile's pace, so 4 minutes ≈ 80 minutes at 1 s), sentinel B samples A every second.
# Prints A's RSS at the start and end and B's verdict on A's memory.
# Usage: contrib/selfcost.sh [path/to/leak-sentinel] [seconds]
set -euo pipefail
BIN=${1:-target/release/leak-sentinel}
SECS=${2:-240}
BIN=$(realpath "$BIN")
dir=$(mktemp -d)
cd "$dir"
"$BIN" --state-dir A run --name A --plain --sample-every 50ms --detail-every 1s --check-every 10s \
    --warmup 10s --duration 24h --timeout "${SECS}s" -- "$BIN" workload clean > A.log 2>&1 &
sleep 2
apid=$(pgrep -f "state-dir A run --name A" | head -1)
"$BIN" --state-dir B run --name B --plain --pid "$apid" --no-children --sample-every 1s \
    --check-every 30s --warmup 30s --duration 24h --timeout "$((SECS - 5))s" --max-failed-checks 100000 > B.log 2>&1 || true
wait || true
"$BIN" --state-dir B report B --csv B.csv 2>/dev/null
samples=$("$BIN" --state-dir A report A --json | python3 -c "import json,sys; print(json.load(sys.stdin)['samples'])")
first=$(sed -n 2p B.csv | cut -d, -f2); last=$(tail -1 B.csv | cut -d, -f2)
python3 - "$samples" "$first" "$last" <<'PY'
import sys
n, a, b = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
per = (b - a) / n
print(f"sentinel A: {n} samples, RSS {a/1048576:.1f} -> {b/1048576:.1f} MiB, {per:.0f} bytes per sample held")
print(f"extrapolated to 6 h at 1 s (21,600 samples): {(a + per * 21600)/1048576:.1f} MiB")
PY
"$BIN" analyze B.csv --warmup 30s | sed -n '1,2p'
rm -rf "$dir"
