#!/bin/bash
# store.sh -- state store benchmark: runs storebench (tests/bench/storebench.c)
# against LMDB in a temporary directory, then against a redis-server of its
# own on a free loopback port (if redis-server is installed), and prints the
# figures.  Builds nothing: run `make build/storebench` first.
#
# Usage: tests/bench/store.sh [STOREBENCH]     (default build/storebench)
#
# Environment:
#   STORE_N=N        records loaded and looked up (default 100000)
#   STORE_W=N        writes and increments measured (default 2000)
#   STORE_GROWTH=N   LMDB growth test keys per round (default 1000000;
#                    0 skips it; ~45 s at the default on 2 cores)
#   STORE_REDIS_N=N  records for Redis (default 20000)
# The LMDB greylist lookup target is >= 100000 lookups/s on one thread.
# Only loopback is used; the redis-server is stopped by its PID.

set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export BENCH_TAG=store
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

bin=${1:-$root/build/storebench}
n=${STORE_N:-100000}
w=${STORE_W:-2000}
growth=${STORE_GROWTH:-1000000}
rn=${STORE_REDIS_N:-20000}

if [ ! -x "$bin" ]; then
	log "store: $bin not found: run 'make build/storebench' first"
	exit 1
fi

tmp=$(mktemp -d /tmp/portero-storebench.XXXXXX)
redis_pid=
cleanup() {
	if [ -n "$redis_pid" ]; then
		stop_pid "$redis_pid"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== lmdb ($tmp)"
"$bin" -b lmdb -p "$tmp/state.lmdb" -n "$n" -w "$w" -g "$growth" |
	tee "$tmp/lmdb.out"
rate=$(sed -n 's/^lmdb get: \([0-9]*\) lookups\/s (1 thread)$/\1/p' \
	"$tmp/lmdb.out")
if [ -n "$rate" ] && [ "$rate" -ge 100000 ]; then
	verdict=met
else
	verdict="NOT MET"
fi
echo "lmdb greylist lookups: ${rate:-?}/s on one thread" \
	"(target >= 100000: $verdict)"

echo "== redis"
if ! command -v redis-server >/dev/null ||
	! command -v redis-cli >/dev/null; then
	echo "redis: skipped (redis-server or redis-cli not installed)"
	exit 0
fi
port=$(/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
ping_redis() {
	redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG
}
for _ in $(seq 1 100); do
	if ping_redis; then
		break
	fi
	sleep 0.05
done
if ! ping_redis; then
	log "store: redis-server did not start:"
	cat "$tmp/redis.log" >&2
	exit 1
fi
"$bin" -b redis -s "127.0.0.1:$port" -n "$rn" -w "$w"
