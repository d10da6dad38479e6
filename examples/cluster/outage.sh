#!/usr/bin/env bash
# The cluster example through a NATS server outage, measured as a user would see it: node b
# hosts store, node a ingest and transform; 2000 records go into node a's stdin at 200 a
# second from the moment node a starts (before it has joined: what it reads first waits in
# the pipe, and it reads stdin once it knows the cluster); at record 600 (30%) the server is
# killed (SIGKILL) and started again on the same port 2 s later, while the records keep
# coming. With the default reconnect buffer no record may be dead-lettered, every record
# that node a forwarded is handled by store on node b, and none twice (store keeps one key
# per record). `--no-outage` leaves the server alone (the fresh node's first records are
# the test).
#
#     examples/cluster/outage.sh path/to/switchyard [--jetstream] [--no-outage]
#
# Needs nats-server and python3 (the paced feeder). Exits non-zero if a check fails.
set -euo pipefail

SWITCHYARD="$(realpath "$1")"
shift
JETSTREAM=""
OUTAGE=1
for arg in "$@"; do
    case "$arg" in
        --jetstream) JETSTREAM="--jetstream" ;;
        --no-outage) OUTAGE=0 ;;
        *) echo "outage.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
SERVER_ARGS=(-a 127.0.0.1 -p "$PORT")
if [ "$JETSTREAM" = "--jetstream" ]; then
    SERVER_ARGS+=(-js -sd "$DIR/js")
fi
SERVER=""
cleanup() {
    # The servers this script started, by their ids: the first, and the one the feeder
    # started again after the kill (its id in server-again.pid).
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
    if [ -f "$DIR/server-again.pid" ]; then kill "$(cat "$DIR/server-again.pid")" 2>/dev/null || true; fi
    rm -rf "$DIR"
}
trap cleanup EXIT

# The example's manifests, with their component files where they are and JetStream if asked.
for n in a b; do
    sed -e "s|\"\\.\\./pipeline/|\"$REPO/examples/pipeline/|" "$REPO/examples/cluster/node-$n.toml" > "$DIR/node-$n.toml"
    if [ "$JETSTREAM" = "--jetstream" ]; then
        sed -i 's|^name = "demo"|name = "demo"\njetstream = true|' "$DIR/node-$n.toml"
    fi
done

wait_for() { # file, text
    for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "outage.sh: no \"$2\" in $1" >&2
    cat "$1" >&2
    return 1
}

cd "$DIR"
nats-server "${SERVER_ARGS[@]}" > nats.log 2>&1 &
SERVER=$!
disown "$SERVER"  # killed on purpose below: no job notice
wait_for nats.log "Server is ready"
mkfifo a.in b.in
"$SWITCHYARD" run --cluster-url "nats://127.0.0.1:$PORT" node-b.toml < b.in > b.out 2> b.err &
NODE_B=$!
exec 3> b.in
wait_for b.err "joined cluster"
"$SWITCHYARD" run --cluster-url "nats://127.0.0.1:$PORT" node-a.toml < a.in > a.out 2> a.err &
NODE_A=$!
exec 4> a.in

# Fed from the moment node a runs. The feeder keeps its pace through the outage: the
# restart happens 2 s after the kill, whatever record it falls on.
python3 - "$OUTAGE" "$SERVER" "${SERVER_ARGS[@]}" >&4 <<'PY'
import os, signal, subprocess, sys, time
outage, server, args = sys.argv[1] == "1", int(sys.argv[2]), sys.argv[3:]
start, restart_at = time.monotonic(), None
for i in range(2000):
    while time.monotonic() < start + i / 200:
        time.sleep(0.001)
    print('{"to":"ingest","payload":"record %d"}' % i, flush=True)
    if outage and i == 600:
        os.kill(server, signal.SIGKILL)
        restart_at = time.monotonic() + 2
        sys.stderr.write("outage.sh: nats-server killed at record 600\n")
    if restart_at is not None and time.monotonic() >= restart_at:
        again = subprocess.Popen(["nats-server", *args], stdout=open("nats-again.log", "w"), stderr=subprocess.STDOUT)
        with open("server-again.pid", "w") as f:
            f.write(str(again.pid))
        restart_at = None
        sys.stderr.write("outage.sh: nats-server started again at record %d\n" % i)
PY
exec 4>&-
wait "$NODE_A"
kill -INT "$NODE_B"
wait "$NODE_B"
exec 3>&-

grep -E "^(dead letters by reason|accounting)|^switchyard: cluster" a.err b.err
forwarded="$(sed -n 's/^switchyard: cluster: node node-a: \([0-9]*\) message(s) taken by other nodes.*/\1/p' a.err)"
unconfirmed="$(sed -n 's/.* taken by other nodes, \([0-9]*\) refused or unconfirmed.*/\1/p' a.err)"
handled="$(awk '$1 == "store" && NF > 5 { print $3 }' b.err)"
keys="$(sed -n 's/^  store: 0 keys at start, \([0-9]*\) keys at exit.*/\1/p' b.err)"
echo "outage.sh: node a forwarded $forwarded ($unconfirmed refused or unconfirmed); store handled $handled, kept $keys keys"
for n in a b; do
    if ! grep -q "^dead letters by reason: none" "$n.err"; then
        echo "outage.sh: node $n dead-lettered records:" >&2
        sed -n '/^dead letters:/,/more$/p' "$n.err" >&2
        exit 1
    fi
done
grep -q "(balanced)" a.err && grep -q "(balanced)" b.err
[ "$unconfirmed" = 0 ] && [ "$forwarded" = "$handled" ] && [ "$handled" = "$keys" ] && [ "$handled" -ge 2000 ]
echo "outage.sh: every record handled once, none dead-lettered"
