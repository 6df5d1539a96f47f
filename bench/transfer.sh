#!/usr/bin/env bash
# Bulk TCP through `skiff run`: 100 MB host → guest (curl from a node HTTP server on the host's
# loopback) and guest → host (python3 to a node sink), at MTU 1500 and 65520. Prints a
# markdown table. A quick check, not the side-by-side comparison with slirp4netns/pasta
# (that harness is future work, see README). Needs root; run after `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
head -c 100000000 /dev/urandom > "$tmp/blob"
cat > "$tmp/servers.mjs" <<'JS'
import http from "node:http"; import net from "node:net"; import fs from "node:fs";
const blob = fs.readFileSync(process.argv[2]);
http.createServer((q, r) => { r.writeHead(200, { "content-length": blob.length }); r.end(blob); }).listen(18080, "127.0.0.1");
net.createServer({ allowHalfOpen: true }, (s) => { let n = 0; s.on("data", (d) => (n += d.length)); s.on("end", () => s.end(String(n))); }).listen(18081, "127.0.0.1");
JS
node "$tmp/servers.mjs" "$tmp/blob" &
sleep 0.5
cat > "$tmp/up.py" <<PY
import socket, time
data = open("$tmp/blob", "rb").read()
s = socket.create_connection(("192.168.65.2", 18081))
t0 = time.time(); s.sendall(data); s.shutdown(socket.SHUT_WR)
n = int(s.recv(100)); dt = time.time() - t0
assert n == len(data), n
print("%.0f" % (len(data) / dt / 1e6))
PY
echo "| path | MTU 1500 | MTU 65520 |"
echo "|---|---|---|"
down=(); up=()
for mtu in 1500 65520; do
  down+=("$(node bin/skiff.js run --mtu $mtu -- curl -s -o /dev/null -w '%{speed_download}' http://192.168.65.2:18080/ | awk '{printf "%.0f", $1/1e6}')")
  up+=("$(node bin/skiff.js run --mtu $mtu -- python3 "$tmp/up.py")")
done
echo "| host → guest (curl download) | ${down[0]} MB/s | ${down[1]} MB/s |"
echo "| guest → host (upload, half-close) | ${up[0]} MB/s | ${up[1]} MB/s |"
