#!/bin/sh
# idle.sh: agent memory (PSS) and idle CPU with N sleeping C workers.
#
#   bench/idle.sh [N [SECONDS]]     default 500 workers, 60 s of idle measurement
#
# Builds glmd, glmctl and the C worker, runs glmd --dev in a temporary
# directory with one task file of N instances, waits until all run, lets it
# settle, then reads the agent's PSS (/proc/PID/smaps_rollup) and its CPU time
# (/proc/PID/stat utime+stime) over SECONDS. Prints one line per figure.
set -eu
N=${1:-500}
SECS=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d)
cleanup() {
	[ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
cd "$ROOT"
go build -o "$W/glmd" ./cmd/glmd
go build -o "$W/glmctl" ./cmd/glmctl
cc -O2 -o "$W/cworker" bench/cworker/worker.c
mkdir -p "$W/run/conf.d"
cat >"$W/run/conf.d/fleet.toml" <<TOML
command = ["$W/cworker", "sleep"]
instances = $N
TOML
cd "$W/run"
# A binary just built is all in the page cache, and the kernel maps cached
# pages around every fault: the file-backed part of PSS would then be most
# of the binary, not what glmd touches. As root, start from a cold cache,
# as after a reboot or an upgrade.
if [ "$(id -u)" = 0 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
"$W/glmd" --dev --metrics-listen off --log-level warn 2>"$W/glmd.log" &
PID=$!
export GLMD_SOCKET="$W/run/.glmd/glmd.sock"
start=$(date +%s%N)
while :; do
	n=$("$W/glmctl" status --json 2>/dev/null | grep -c '"state": "running"' || true)
	[ "$n" -ge "$N" ] && break
	sleep 0.05
done
echo "all $N running after $(( ($(date +%s%N) - start) / 1000000 )) ms (includes glmctl polling)"
sleep 5
pss=$(awk '/^Pss:/ {print $2}' /proc/$PID/smaps_rollup)
anon=$(awk '/^Pss_Anon:/ {print $2}' /proc/$PID/smaps_rollup)
file=$(awk '/^Pss_File:/ {print $2}' /proc/$PID/smaps_rollup)
rss=$(awk '/^Rss:/ {print $2}' /proc/$PID/smaps_rollup)
echo "agent PSS $((pss / 1024)) MiB (anonymous $((anon / 1024)), file-backed $((file / 1024))), RSS $((rss / 1024)) MiB with $N instances"
# CPU time in ns, summed over the agent's threads (schedstat has ns
# resolution; /proc/PID/stat counts 10 ms ticks).
cpu() { cat /proc/$PID/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
wake() { cat /proc/$PID/task/*/schedstat 2>/dev/null | awk '{s += $3} END {printf "%d", s}'; }
c0=$(cpu); w0=$(wake); t0=$(date +%s%N)
sleep "$SECS"
c1=$(cpu); w1=$(wake); t1=$(date +%s%N)
echo "idle CPU: $(( (c1 - c0) / 1000 )) us in $(( (t1 - t0) / 1000000 )) ms" \
     "= $(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.4f", c / t * 100 }')% of a core," \
     "$(( w1 - w0 )) thread wake-ups"
echo "threads: $(ls /proc/$PID/task | wc -l), open fds: $(ls /proc/$PID/fd | wc -l)"
s0=$(date +%s%N)
kill -TERM "$PID"
wait "$PID"
PID=
echo "SIGTERM to exit with $N workers stopped: $(( ($(date +%s%N) - s0) / 1000000 )) ms"
left=$(grep -l "GLMD_TASK=fleet" /proc/[0-9]*/environ 2>/dev/null | wc -l)
echo "processes of the task left: $left"
