/**
 * Shared by the bench processes (run, load, ceiling, handler): event shape, histograms, /proc readers and the
 * one-line JSON protocol the orchestrator reads from its children.
 */
import { spawnSync } from 'node:child_process';
import { fstatSync, readFileSync } from 'node:fs';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

/** Size of every inbound event body, in bytes. */
export const EVENT_BYTES = 256;
export const PREFIX = 'events';
/** Inbound events: `events.bench.in` (stream EVENTS captures `events.bench.>`). */
export const IN_TYPE = 'bench.in';
export const IN_SUBJECT = `${PREFIX}.${IN_TYPE}`;
/** Follow-ups the bench handler returns: `events.benchout.done` (stream OUT captures `events.benchout.>`). */
export const OUT_TYPE = 'benchout.done';
export const OUT_WILDCARD = `${PREFIX}.benchout.>`;
export const IN_STREAM = 'EVENTS';
export const OUT_STREAM = 'OUT';

/** What the bench handler echoes in each follow-up's payload. */
export interface FollowUpPayload {
  /** Phase id (warm-up, saturation, rate) so stragglers from an earlier phase are ignored. */
  p: string;
  /** Index of the event within its phase. */
  i: number;
  /** The load process's performance.now() at publish, in ms. */
  t: number;
  /** The handler's own time for this event, in µs. */
  h: number;
  /** How the handler was called: `u` unary Handle, `s` HandleStream. */
  v: 'u' | 's';
}

const PAD = 'x'.repeat(EVENT_BYTES);

/** A JSON body of exactly EVENT_BYTES bytes: `{"p":..,"i":..,"t":..,"pad":"xxx…"}`. */
export function eventBody(phase: string, i: number, t: number): Buffer {
  const head = `{"p":"${phase}","i":${i},"t":${t},"pad":"`;
  const fill = EVENT_BYTES - head.length - 2;
  if (fill < 0) throw new Error('event header longer than the event');
  return Buffer.from(`${head}${PAD.slice(0, fill)}"}`, 'latin1');
}

/** Latency histogram in µs: 1 µs … 10 min, 3 significant digits. */
/** The binary-mode CloudEvents headers of bench event `i`, as a producer would send them. */
export function eventHeaders(id: string, i: number): MsgHdrs {
  const h = natsHeaders();
  h.set('ce-specversion', '1.0');
  h.set('ce-id', id);
  h.set('ce-type', IN_TYPE);
  h.set('ce-source', 'stufio-bench/load');
  h.set('ce-subject', `e-${i % 1000}`);
  h.set('ce-time', new Date().toISOString());
  h.set('content-type', 'application/json');
  return h;
}

export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

export interface LatencySummary {
  count: number;
  /** µs */
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export function summarise(h: Histogram): LatencySummary {
  const n = h.totalCount;
  if (n === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  return {
    count: n,
    min: h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue,
    mean: Math.round(h.mean),
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  };
}

/** Records a µs value, clamped into the histogram's range. */
export function record(h: Histogram, us: number): void {
  h.recordValue(Math.min(600_000_000, Math.max(1, Math.round(us))));
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    clkTck = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clkTck;
}

/** utime + stime of a process (all its threads), in seconds; undefined when it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may hold spaces and parentheses: count from the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** A field of /proc/<pid>/status in kB (VmHWM = peak RSS, VmRSS = current). */
export function statusKb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number | undefined {
  if (!pid) return undefined;
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export type Pids = Record<string, number | undefined>;

/** CPU seconds of several processes at once. */
export function cpuSnapshot(pids: Pids): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = cpuSeconds(pid);
  return out;
}

export function cpuDelta(before: Record<string, number | undefined>, after: Record<string, number | undefined>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const name of Object.keys(before)) {
    const a = before[name];
    const b = after[name];
    out[name] = a === undefined || b === undefined ? null : round(b - a, 3);
  }
  return out;
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The single line a child prints on stdout for the orchestrator: `@@result {...}`. */
export const RESULT_MARK = '@@result ';
export function emitResult(value: unknown): void {
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(value)}\n`);
}

/** `--name value` and `--flag` arguments into a map (values stay strings). */
export function parseFlags(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out.set(a.slice(2), argv[++i]!);
    else out.set(a.slice(2), 'true');
  }
  return out;
}

export function numFlag(flags: Map<string, string>, name: string, dflt: number): number {
  const v = flags.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
  return n;
}

/** Children die with their parent: the orchestrator holds their stdin open, EOF means it is gone. */
export function exitWhenParentGoes(): void {
  // Only when stdin is a pipe (as the orchestrator spawns us): run by hand, stdin is a terminal or /dev/null.
  try {
    if (!fstatSync(0).isFIFO()) return;
  } catch {
    return;
  }
  process.stdin.on('end', () => process.exit(3));
  process.stdin.on('error', () => process.exit(3));
  process.stdin.resume();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
