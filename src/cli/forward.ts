/**
 * `skiff forward add|ls|rm --api-socket PATH`: a client of a running skiff's control API
 * (src/forward/api.ts).
 */

import type { Command } from "commander";
import type { ForwardInfo } from "../forward/manager.js";
import { apiRequest } from "../forward/client.js";
import { parsePublish, type ForwardSpec } from "../forward/spec.js";

/** `skiff forward add|ls|rm --api-socket PATH`. */
export function forwardCommand(program: Command, setStatus: (s: number) => void): void {
  const cmd = program.command("forward").description("add, list or remove port forwards of a running skiff (through its --api-socket)");
  const fail = (msg: string) => {
    process.stderr.write(`skiff forward: ${msg}\n`);
    setStatus(1);
  };
  const call = async (socket: string, method: string, path: string, body?: unknown) => {
    try {
      return await apiRequest(socket, method, path, body);
    } catch (e) {
      throw new Error(`cannot reach the API at ${socket}: ${(e as Error).message}`);
    }
  };
  const at = (a: string, p: number) => (a.includes(":") ? `[${a}]:${p}` : `${a}:${p}`);
  /** Stands for "no guest named" while parsing (never a valid address). */
  const UNNAMED = "unnamed";
  const show = (f: ForwardInfo) => `${f.id}\t${f.proto}\t${at(f.hostAddr, f.hostPort)}\t->\t${at(f.guestAddr, f.guestPort)}${f.guestAddrFallback ? ` (or ${at(f.guestAddrFallback, f.guestPort)})` : ""}\n`;
  cmd
    .command("add")
    .description("add forwards: [hostAddr:]hostPort:[guestAddr:]guestPort[/udp] (ranges allowed; IPv6 addresses in brackets), to the named guest, --guest or the running command's guest")
    .argument("<spec...>", "forward specs, as with skiff run -p")
    .requiredOption("--api-socket <path>", "the control API socket")
    .option("--guest <ip>", "guest address (default: the one skiff forwards to)")
    .action(async (specs: string[], o) => {
      const all: Array<Partial<ForwardSpec>> = [];
      for (const s of specs) {
        // Without --guest or a guest address in the text, the API picks the running command's guest.
        const r = parsePublish(s, o.guest ?? UNNAMED);
        if (typeof r === "string") return fail(r);
        for (const x of r) all.push(x.guestAddr !== UNNAMED ? x : { proto: x.proto, hostAddr: x.hostAddr, hostPort: x.hostPort, guestPort: x.guestPort });
      }
      const added: string[] = [];
      for (const spec of all) {
        const r = await call(o.apiSocket, "POST", "/forwards", spec);
        if (r.status !== 201) {
          // All or nothing, as with -p: take back what this command added.
          for (const id of added) await call(o.apiSocket, "DELETE", `/forwards/${id}`);
          return fail((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
        }
        added.push((r.body as ForwardInfo).id);
        process.stdout.write(show(r.body as ForwardInfo));
      }
    });
  cmd
    .command("ls")
    .description("list forwards")
    .requiredOption("--api-socket <path>", "the control API socket")
    .option("--json", "print JSON")
    .action(async (o) => {
      const r = await call(o.apiSocket, "GET", "/forwards");
      if (r.status !== 200) return fail((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
      const list = r.body as ForwardInfo[];
      process.stdout.write(o.json ? JSON.stringify(list) + "\n" : list.map(show).join(""));
    });
  cmd
    .command("rm")
    .description("remove forwards by id (open connections finish)")
    .argument("<id...>")
    .requiredOption("--api-socket <path>", "the control API socket")
    .action(async (ids: string[], o) => {
      for (const id of ids) {
        const r = await call(o.apiSocket, "DELETE", `/forwards/${encodeURIComponent(id)}`);
        if (r.status !== 200) return fail((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
      }
    });
}
