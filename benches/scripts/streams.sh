#!/bin/sh
# fastcat `--streams N` against one stream: one file over loopback, fastcat recv and fastcat send
# as two processes, each timed by /usr/bin/time (user + system CPU, wall). Rounds alternate the
# stream counts and the backends, so a drift of the machine's speed touches all of them alike;
# the medians per (streams, backend) are printed at the end. Every copy is compared with the
# source once per backend and stream count before the timed rounds.
#
#   cargo build --release -p fastcat && sh benches/scripts/streams.sh [ROUNDS] [STREAMS] [MIB]
#
# Defaults: 6 rounds, 4 streams, a 1024 MiB file. The source and the copies live in /dev/shm.
# With RAW=1 every run's row is printed too.
set -eu
ROUNDS=${1:-6}
STREAMS=${2:-4}
MIB=${3:-1024}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
FASTCAT=$HERE/target/release/fastcat
SRC=/dev/shm/fastcat_streams_src.bin
DST=/dev/shm/fastcat_streams_dst.bin
OUT=$(mktemp)
[ -x "$FASTCAT" ] || { echo "build it first: cargo build --release -p fastcat" >&2; exit 2; }
trap 'rm -f "$SRC" "$DST" "$OUT"' EXIT
head -c $((MIB * 1048576)) /dev/urandom > "$SRC"

# One transfer: prints "streams backend send_cpu send_wall recv_cpu recv_wall".
transfer() {
    log=$(mktemp); rt=$(mktemp); st=$(mktemp)
    rm -f "$DST"
    /usr/bin/time -o "$rt" -f "%U %S %e" "$FASTCAT" recv 0 -o "$DST" --streams "$1" --backend "$2" 2>"$log" &
    recv=$!
    port=
    for _ in $(seq 1 500); do
        port=$(sed -n 's/.*listening on \[::\]:\([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && break
        sleep 0.01
    done
    [ -n "$port" ] || { echo "recv never listened: $(cat "$log")" >&2; exit 1; }
    /usr/bin/time -o "$st" -f "%U %S %e" "$FASTCAT" send "$SRC" "127.0.0.1:$port" --streams "$1" --backend "$2" 2>/dev/null
    wait $recv
    set -- "$1" "$2" $(cat "$st") $(cat "$rt")
    echo "$@" | awk '{ print $1, $2, $3 + $4, $5, $6 + $7, $8 }'
    rm -f "$log" "$rt" "$st"
}

for backend in io_uring epoll; do
    for n in 1 "$STREAMS"; do
        transfer "$n" "$backend" >/dev/null
        cmp -s "$SRC" "$DST" || { echo "the copy differs: $n streams on $backend" >&2; exit 1; }
    done
done
for _ in $(seq 1 "$ROUNDS"); do
    for backend in io_uring epoll; do
        for n in 1 "$STREAMS"; do
            transfer "$n" "$backend" >> "$OUT"
        done
    done
done
# RAW=1 prints every run first: this machine is bimodal, and medians of a few runs hide it.
[ -n "${RAW:-}" ] && cat "$OUT"
echo "streams backend | sender CPU s | sender wall s | receiver CPU s | receiver wall s (medians of $ROUNDS, $MIB MiB)"
sort -k1,1n -k2,2 "$OUT" | awk '
function median(list, n,   i, j, t, a) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 " " $2; keys[k] = 1; sc[k] = sc[k] " " $3; sw[k] = sw[k] " " $4; rc[k] = rc[k] " " $5; rw[k] = rw[k] " " $6 }
END { for (k in keys) printf "%-16s | %.3f | %.3f | %.3f | %.3f\n", k, median(sc[k]), median(sw[k]), median(rc[k]), median(rw[k]) }' | sort
