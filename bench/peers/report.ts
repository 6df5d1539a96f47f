// Report of the side-by-side benchmark (issue 8), pure functions: metric definitions, medians and ranges, ratios, the markdown table, the targets, the JSON summary and the SVG bar chart.

export type Better = "higher" | "lower";

export interface MetricDef {
  key: string;
  label: string;
  unit: string;
  better: Better;
  /** An IPv6 row: the key of the same measure over IPv4 (its own table, ipv6Table). */
  v4?: string;
}

/** Every figure the harness measures, in table order. */
export const METRICS: MetricDef[] = [
  { key: "tcp_up_1500", label: "TCP ns→host, MTU 1500", unit: "Gbit/s", better: "higher" },
  { key: "tcp_down_1500", label: "TCP host→ns, MTU 1500", unit: "Gbit/s", better: "higher" },
  { key: "tcp_up_65520", label: "TCP ns→host, MTU 65520", unit: "Gbit/s", better: "higher" },
  { key: "tcp_down_65520", label: "TCP host→ns, MTU 65520", unit: "Gbit/s", better: "higher" },
  { key: "http_c1", label: "HTTP 1 KiB, 1 conn keep-alive", unit: "req/s", better: "higher" },
  { key: "http_c50", label: "HTTP 1 KiB, 50 conns keep-alive", unit: "req/s", better: "higher" },
  { key: "conn_rate", label: "new connections (20 conns, close)", unit: "conn/s", better: "higher" },
  { key: "latency", label: "TCP ping-pong latency (sockperf)", unit: "µs", better: "lower" },
  { key: "udp_rx", label: "UDP ns→host received (1 Gbit/s offered)", unit: "Gbit/s", better: "higher" },
  { key: "udp_loss", label: "UDP loss at 1 Gbit/s offered", unit: "%", better: "lower" },
  { key: "cpu_up", label: "CPU per GB, TCP ns→host, MTU 65520", unit: "s/GB", better: "lower" },
  { key: "cpu_down", label: "CPU per GB, TCP host→ns, MTU 65520", unit: "s/GB", better: "lower" },
  { key: "rss_idle", label: "RSS idle", unit: "MB", better: "lower" },
  { key: "rss_10k", label: "RSS with 10,000 idle TCP conns", unit: "MB", better: "lower" },
  // Issue 18: the same bulk and HTTP measures over IPv6 (skiff's host alias fd73:6b69:6666::2 → ::1).
  ...(["tcp_up_1500", "tcp_down_1500", "tcp_up_65520", "tcp_down_65520", "http_c1", "http_c50"] as const).map((k): MetricDef => {
    const m = { tcp_up_1500: "TCP ns→host, MTU 1500", tcp_down_1500: "TCP host→ns, MTU 1500", tcp_up_65520: "TCP ns→host, MTU 65520", tcp_down_65520: "TCP host→ns, MTU 65520", http_c1: "HTTP 1 KiB, 1 conn keep-alive", http_c50: "HTTP 1 KiB, 50 conns keep-alive" }[k];
    return { key: ipv6Key(k), label: `IPv6 ${m}`, unit: k.startsWith("tcp") ? "Gbit/s" : "req/s", better: "higher", v4: k };
  }),
  ...[0, 1, 5, 10].flatMap((pct): MetricDef[] => [
    { key: `loss${pct}_down`, label: `20 MB host→ns, ${pct ? `${pct}% loss each way` : "no loss"} (MTU 1500, no offload)`, unit: "s", better: "lower" },
    { key: `loss${pct}_up`, label: `20 MB ns→host, ${pct ? `${pct}% loss each way` : "no loss"} (MTU 1500, no offload)`, unit: "s", better: "lower" },
  ]),
];

/** The key of an IPv4 measure's IPv6 twin: tcp_up_1500 → tcp6_up_1500, http_c1 → http6_c1. */
export function ipv6Key(v4: string): string {
  return v4.replace(/^(tcp|http)_/, (_, p: string) => `${p}6_`);
}

/** The rows of the main table (IPv4 and the process figures); the IPv6 rows have a table of their own. */
export const MAIN_METRICS = METRICS.filter((m) => m.v4 === undefined);

export interface ContenderDef {
  key: string;
  label: string;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
  samples: number[];
}

/** contender key → metric key → summary of its samples. */
export type Summary = Record<string, Record<string, Stat | undefined>>;
/** contender key → metric key → one value per round. */
export type Samples = Record<string, Record<string, number[]>>;

export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function stat(xs: readonly number[]): Stat | undefined {
  const m = median(xs);
  if (m === undefined) return undefined;
  return { median: m, min: Math.min(...xs), max: Math.max(...xs), n: xs.length, samples: [...xs] };
}

export function summarize(samples: Samples): Summary {
  const out: Summary = {};
  for (const [c, byMetric] of Object.entries(samples)) {
    out[c] = {};
    for (const [m, xs] of Object.entries(byMetric)) out[c][m] = stat(xs);
  }
  return out;
}

/** a ÷ b, undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return undefined;
  return a / b;
}

const DASH = "—";

/** A figure with precision that suits its unit (req/s and conn/s in thousands). */
export function formatValue(v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return DASH;
  switch (unit) {
    case "req/s":
    case "conn/s":
      return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
    case "Gbit/s":
    case "s/GB":
      return v < 0.1 && v > 0 ? v.toFixed(3) : v.toFixed(2);
    case "MB":
      return v.toFixed(0);
    case "s":
      return v < 10 ? v.toFixed(2) : v.toFixed(1);
    default:
      return v.toFixed(1);
  }
}

export function formatRatio(r: number | undefined): string {
  return r === undefined ? DASH : `${r.toFixed(2)}×`;
}

function med(s: Summary, c: string, m: string): number | undefined {
  return s[c]?.[m]?.median;
}

/**
 * One markdown table: a row per metric, a column per contender (medians), then skiff's figure
 * divided by slirp4netns's and by the kernel veth's. The "better" column says which way is good.
 */
export function markdownTable(s: Summary, contenders: ContenderDef[], metrics: MetricDef[] = MAIN_METRICS, subject = "skiff", refKeys = ["slirp4netns", "veth"]): string {
  const refs = contenders.filter((c) => c.key !== subject && refKeys.includes(c.key));
  // The IPv6 table also divides skiff's IPv6 figure by its IPv4 one (what IPv6 costs it).
  const twin = metrics.some((m) => m.v4 !== undefined);
  const head = ["metric", "unit", "better", ...contenders.map((c) => c.label), ...refs.map((r) => `${subject} ÷ ${r.label}`), ...(twin ? [`${subject} IPv6 ÷ IPv4`] : [])];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i < 3 ? "---" : "---:")).join("|")}|`];
  for (const m of metrics) {
    const cells = contenders.map((c) => formatValue(med(s, c.key, m.key), m.unit));
    if (cells.every((x) => x === DASH)) continue;
    const ratios = refs.map((r) => formatRatio(ratio(med(s, subject, m.key), med(s, r.key, m.key))));
    if (twin) ratios.push(formatRatio(m.v4 === undefined ? undefined : ratio(med(s, subject, m.key), med(s, subject, m.v4))));
    lines.push(`| ${[m.label, m.unit, m.better === "higher" ? "↑ higher" : "↓ lower", ...cells, ...ratios].join(" | ")} |`);
  }
  return lines.join("\n");
}

/**
 * The IPv6 rows (issue 18) side by side: the contenders that measured any of them (skiff, pasta,
 * the kernel veth; slirp4netns runs without IPv6), skiff's figure divided by pasta's and the
 * veth's, and by its own IPv4 figure. Empty when no IPv6 row was measured.
 */
export function ipv6Table(s: Summary, contenders: ContenderDef[]): string {
  const rows = METRICS.filter((m) => m.v4 !== undefined);
  const who = contenders.filter((c) => rows.some((m) => med(s, c.key, m.key) !== undefined));
  return who.length ? markdownTable(s, who, rows, "skiff", ["pasta", "veth"]) : "";
}

export interface TargetResult {
  label: string;
  /** undefined when a figure is missing. */
  pass: boolean | undefined;
  detail: string;
}

interface TargetDef {
  label: string;
  metric: string;
  /** Compare against another contender's median times factor, or against a fixed value. */
  against: { contender: string; factor: number } | { value: number };
  /** ">" and "<": strictly ahead (issue 20's "ahead of", "below"). */
  op: ">=" | "<=" | ">" | "<";
}

function holds(a: number, op: TargetDef["op"], b: number): boolean {
  return op === ">=" ? a >= b : op === "<=" ? a <= b : op === ">" ? a > b : a < b;
}

/** The targets of issues 8, 19 and 20. */
export const TARGETS: TargetDef[] = [
  { label: "bulk ns→host at MTU 65520 ≥ 1.5× slirp4netns", metric: "tcp_up_65520", against: { contender: "slirp4netns", factor: 1.5 }, op: ">=" },
  { label: "ns→host at MTU 1500 ≥ 2 Gbit/s", metric: "tcp_up_1500", against: { value: 2 }, op: ">=" },
  { label: "host→ns at MTU 1500 ≥ slirp4netns", metric: "tcp_down_1500", against: { contender: "slirp4netns", factor: 1 }, op: ">=" },
  { label: "host→ns at MTU 65520 ≥ slirp4netns", metric: "tcp_down_65520", against: { contender: "slirp4netns", factor: 1 }, op: ">=" },
  { label: "HTTP req/s, 1 conn ≥ slirp4netns", metric: "http_c1", against: { contender: "slirp4netns", factor: 1 }, op: ">=" },
  { label: "HTTP req/s, 50 conns ≥ slirp4netns", metric: "http_c50", against: { contender: "slirp4netns", factor: 1 }, op: ">=" },
  { label: "new conns/s ≥ slirp4netns", metric: "conn_rate", against: { contender: "slirp4netns", factor: 1 }, op: ">=" },
  { label: "ping-pong latency ≤ 1.3× kernel veth", metric: "latency", against: { contender: "veth", factor: 1.3 }, op: "<=" },
  { label: "RSS with 10,000 idle conns ≤ 300 MB", metric: "rss_10k", against: { value: 300 }, op: "<=" },
  // Issue 19: a 20 MB transfer under random loss within 3× the kernel's time, each way.
  ...[1, 5, 10].flatMap((pct): TargetDef[] => [
    { label: `20 MB host→ns at ${pct}% loss ≤ 3× kernel veth`, metric: `loss${pct}_down`, against: { contender: "veth", factor: 3 }, op: "<=" },
    { label: `20 MB ns→host at ${pct}% loss ≤ 3× kernel veth`, metric: `loss${pct}_up`, against: { contender: "veth", factor: 3 }, op: "<=" },
  ]),
  // Issue 20: where skiff was only level with its peers.
  { label: "new conns/s ≥ 2× slirp4netns (issue 20)", metric: "conn_rate", against: { contender: "slirp4netns", factor: 2 }, op: ">=" },
  { label: "HTTP req/s, 50 conns ≥ 1.5× slirp4netns (issue 20)", metric: "http_c50", against: { contender: "slirp4netns", factor: 1.5 }, op: ">=" },
  { label: "HTTP req/s, 1 conn ahead of slirp4netns (issue 20)", metric: "http_c1", against: { contender: "slirp4netns", factor: 1 }, op: ">" },
  { label: "ping-pong latency below slirp4netns (issue 20)", metric: "latency", against: { contender: "slirp4netns", factor: 1 }, op: "<" },
  { label: "UDP loss at 1 Gbit/s offered ≤ 1% (issue 20)", metric: "udp_loss", against: { value: 1 }, op: "<=" },
  { label: "UDP loss below slirp4netns (issue 20)", metric: "udp_loss", against: { contender: "slirp4netns", factor: 1 }, op: "<" },
  { label: "RSS idle ≤ 45 MB (issue 20)", metric: "rss_idle", against: { value: 45 }, op: "<=" },
  { label: "RSS with 10,000 idle conns under 225 MB (issue 20)", metric: "rss_10k", against: { value: 225 }, op: "<" },
];

export function evaluateTargets(s: Summary, subject = "skiff", targets: TargetDef[] = TARGETS, metrics: MetricDef[] = METRICS): TargetResult[] {
  return targets.map((t) => {
    const unit = metrics.find((m) => m.key === t.metric)?.unit ?? "";
    const mine = med(s, subject, t.metric);
    const fmt = (v: number | undefined) => `${formatValue(v, unit)} ${unit}`;
    if ("value" in t.against) {
      const bound = t.against.value;
      const pass = mine === undefined ? undefined : holds(mine, t.op, bound);
      return { label: t.label, pass, detail: `${subject} ${fmt(mine)}` };
    }
    const { contender, factor } = t.against;
    const theirs = med(s, contender, t.metric);
    const r = ratio(mine, theirs);
    // A peer's 0 (no loss) has no ratio: the values themselves are compared.
    const pass = r !== undefined ? holds(r, t.op, factor) : mine !== undefined && theirs !== undefined ? holds(mine, t.op, theirs * factor) : undefined;
    return { label: t.label, pass, detail: `${formatRatio(r)} (${subject} ${fmt(mine)}, ${contender} ${fmt(theirs)})` };
  });
}

export function targetsSection(results: TargetResult[]): string {
  const word = (p: boolean | undefined) => (p === undefined ? "N/A " : p ? "PASS" : "FAIL");
  return ["Targets:", ...results.map((r) => `- ${word(r.pass)} ${r.label}: ${r.detail}`)].join("\n");
}

/** Bar length in [0, 1]: 1 for the best contender of the metric. */
export function normalised(v: number, values: readonly number[], better: Better): number {
  if (better === "higher") {
    const best = Math.max(...values);
    return best > 0 ? Math.max(0, v / best) : 0;
  }
  const best = Math.min(...values);
  if (v <= 0) return 1;
  return best <= 0 ? 0 : Math.min(1, best / v);
}

const PALETTE = ["#2b6cb0", "#dd6b20", "#38a169", "#718096", "#805ad5", "#d53f8c"];

function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Grouped horizontal bars, one group per metric, normalised per metric to its best contender, labelled with values. */
export function renderSvg(s: Summary, contenders: ContenderDef[], metrics: MetricDef[] = METRICS, title = "skiff and its peers"): string {
  const W = 960, left = 170, barMax = 640, barH = 14, gap = 3, groupGap = 14, titleH = 20;
  const body: string[] = [];
  let y = 62;
  contenders.forEach((c, i) => {
    const x = left + i * 150;
    body.push(`<rect x="${x}" y="34" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    body.push(`<text x="${x + 16}" y="45">${xml(c.label)}</text>`);
  });
  for (const m of metrics) {
    const vals = contenders.map((c) => med(s, c.key, m.key));
    const present = vals.filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (present.length === 0) continue;
    y += titleH;
    body.push(`<text x="10" y="${y - 6}" font-weight="bold">${xml(`${m.label} (${m.unit}, ${m.better === "higher" ? "higher" : "lower"} is better)`)}</text>`);
    contenders.forEach((c, i) => {
      const v = vals[i];
      body.push(`<text x="${left - 8}" y="${y + barH - 3}" text-anchor="end">${xml(c.label)}</text>`);
      if (v === undefined || !Number.isFinite(v)) {
        body.push(`<text x="${left + 4}" y="${y + barH - 3}" fill="#888">${DASH}</text>`);
      } else {
        const w = Math.max(2, Math.round(normalised(v, present, m.better) * barMax));
        body.push(`<rect x="${left}" y="${y}" width="${w}" height="${barH}" fill="${PALETTE[i % PALETTE.length]}"/>`);
        body.push(`<text x="${left + w + 6}" y="${y + barH - 3}">${xml(`${formatValue(v, m.unit)} ${m.unit}`)}</text>`);
      }
      y += barH + gap;
    });
    y += groupGap;
  }
  const H = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="16" font-weight="bold">${xml(title)}</text>`,
    `<text x="10" y="${H - 4}" font-size="10" fill="#666">medians; each metric's bars are scaled to its best contender (longest bar = best)</text>`,
    ...body,
    `</svg>`,
    "",
  ].join("\n");
}
