/**
 * A client of the control API (`src/forward/api.ts`) over its Unix socket: one request, the
 * status and the parsed JSON answer. Used by `skiff forward` and the tests.
 */

import { request } from "node:http";

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** Send `method path` with `body` (JSON-encoded unless a string) to the API at `socketPath`. */
export function apiRequest(socketPath: string, method: string, path: string, body?: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: text === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(text) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = raw;
        try {
          parsed = JSON.parse(raw);
        } catch {
          /* not JSON: keep the text */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(text);
  });
}
