// The VM path, one transfer at a time (issue 20): a TCG guest of skiff's image on `skiff serve
// --qemu-stream` (or QEMU's `-netdev user` with USERNET=1) runs N transfers, each bounded by busybox
// `timeout` and reported on the console as "RUN i rc=… bytes=… START END" (guest /proc/uptime, s).
// Made to hunt the intermittent hang of a download whose FIN never reached the guest, and to
// profile skiff on one direction at a time.
//
// `npx tsx bench/vm-fin-loop.ts N SIZE [SKIFF_DIR] [PCAP]` — SKIFF_DIR holds bin/skiff.js (default
// this checkout), PCAP is skiff's --pcap (QEMU's filter-dump with USERNET=1). Environment:
//   UP=1                  upload SIZE bytes (dd | nc) instead of downloading (busybox wget)
//   NULL=1                wget writes to /dev/null (default: a pipe to wc -c, which checks the size)
//   IPERF=PORT INITRD=F   iperf3 -c -R -t 3 against a host `iperf3 -s -p PORT`; F is an initrd
//                         that carries iperf3 (the image's initrd with a cpio of iperf3 and its
//                         libraries appended)
//   SKIFF_NODE_FLAGS=…    node flags for skiff (e.g. "--cpu-prof --cpu-prof-dir=DIR")
//   STATS=1               print skiff's /stats after the guest is done
import { spawn } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { mkdtempSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findImage } from "../src/vm/image.js";
import { qemuArgs, QEMU_BINARY } from "../src/vm/qemu.js";

const [n = "20", size = "20000000", dir = process.cwd(), pcap] = process.argv.slice(2);
const chunk = Buffer.alloc(65536, 0x5a);
const srv = createServer((s) => {
  let left = Number(size);
  s.once("data", () => more());
  s.write(`HTTP/1.0 200 OK\r\ncontent-length: ${left}\r\n\r\n`);
  const more = () => {
    while (left > 0) {
      const k = Math.min(left, chunk.length);
      left -= k;
      if (!s.write(k === chunk.length ? chunk : chunk.subarray(0, k))) return void s.once("drain", more);
    }
    s.end();
  };
  s.on("error", () => {});
});
await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
const port = (srv.address() as AddressInfo).port;
const tmp = mkdtempSync(join(tmpdir(), "vmfin-"));
const sock = join(tmp, "s.sock");
const skiff = spawn(process.execPath, [...(process.env.SKIFF_NODE_FLAGS?.split(" ").filter(Boolean) ?? []), join(dir, "bin/skiff.js"), "serve", "--qemu-stream", `unix:${sock}`, ...(pcap ? ["--pcap", pcap] : []), "--api-socket", join(tmp, "api.sock")], { stdio: "inherit" });
while (!existsSync(sock)) await new Promise((r) => setTimeout(r, 100));
const image = findImage()!;
const up = process.env.UP === "1";
const user = process.env.USERNET === "1";
const HOST = user ? "10.0.2.2" : "192.168.65.2";
const sink = createServer((s) => {
  let got = 0;
  s.on("data", (d) => (got += d.length));
  s.on("end", () => s.end(`${got}\n`));
  s.on("error", () => {});
});
await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
const sinkPort = (sink.address() as AddressInfo).port;
const get = up ? `dd if=/dev/zero bs=65536 count=${Math.ceil(Number(size) / 65536)} 2>/dev/null | nc ${HOST} ${sinkPort}` : `wget -q -O ${process.env.NULL ? "/dev/null" : "-"} http://${HOST}:${port}/`;
// IPERF=PORT: iperf3 -R against a host `iperf3 -s -p PORT` (the initrd must carry iperf3: INITRD=path).
const iperf = process.env.IPERF;
const cmd = iperf ? `i=0; while [ $i -lt ${n} ]; do i=$((i+1)); s=$(date +%s); timeout 40 iperf3 -c ${HOST} -p ${iperf} -R -t 3 > /tmp/o 2>&1; rc=$?; echo "RUN $i rc=$rc $(grep receiver /tmp/o | tail -1) $(( $(date +%s) - s ))s"; [ $rc = 0 ] || tail -5 /tmp/o; done` : `i=0; while [ $i -lt ${n} ]; do i=$((i+1)); read s x < /proc/uptime; timeout 60 ${get} ${process.env.NULL ? "> /dev/null" : "| wc -c > /tmp/c"}; rc=$?; read e x < /proc/uptime; echo "RUN $i rc=$rc bytes=$(cat /tmp/c) $s $e"; done`;
const qa = qemuArgs({ kernel: image.kernel, initrd: process.env.INITRD ?? image.initrd, accel: "tcg", cpus: 1, memoryMiB: 256, command: cmd, tcgCacheMiB: 128, net: user ? undefined : { kind: "stream", path: sock, mac: "52:54:00:12:34:56" } });
if (user) {
  // QEMU's own user networking (libslirp) instead, pcap by filter-dump when asked.
  const i = qa.indexOf("-nic");
  qa.splice(i, 2, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56,romfile=", ...(pcap ? ["-object", `filter-dump,id=f0,netdev=n0,file=${pcap}`] : []));
}
const q = spawn(QEMU_BINARY, qa, { stdio: ["ignore", "pipe", "inherit"] });
let buf = "";
q.stdout!.on("data", (b: Buffer) => {
  buf += b.toString();
  const lines = buf.split("\n");
  buf = lines.pop()!;
  for (const l of lines) if (/RUN|FAIL|rror/.test(l)) console.log(new Date().toISOString().slice(11, 19), l.trim());
});
await new Promise((r) => q.once("exit", r));
if (process.env.STATS) {
  const { execFileSync } = await import("node:child_process");
  console.log(execFileSync("curl", ["-s", "--unix-socket", join(tmp, "api.sock"), "http://x/stats"], { encoding: "utf8" }));
}
skiff.kill("SIGTERM");
srv.close();
sink.close();
