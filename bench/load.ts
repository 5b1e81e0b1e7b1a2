/**
 * The load process of one benchmark row: publishes 256-byte JSON events (binary-mode CloudEvents) to
 * `events.bench.in`, on core NATS or with JetStream publishes, and receives the follow-ups on a core
 * subscription to `events.benchout.>`. Phases:
 *
 *   warm-up     a few hundred events; fails when no follow-up arrives within --first-ms (default 10 s)
 *   rate        --rate events/s for --rate-seconds, paced: end-to-end latency without a backlog
 *   saturation  --count events published as fast as allowed (JetStream: --window PubAcks outstanding);
 *               events/s = count / (last follow-up received − first publish)
 *
 * Latency = follow-up received − publish (the publish time rides in the payload; both ends are this
 * process's clock). The bench handler puts its own time in the follow-up, so `added` = e2e − handler time.
 * CPU of the processes named in --pids is read from /proc around each phase.
 *
 * Prints one `@@result {...}` line.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { Histogram } from 'hdr-histogram-js';
import {
  cpuDelta,
  cpuSnapshot,
  emitResult,
  eventBody,
  exitWhenParentGoes,
  IN_SUBJECT,
  newHistogram,
  numFlag,
  OUT_WILDCARD,
  parseFlags,
  record,
  round,
  sleep,
  statusKb,
  summarise,
  type FollowUpPayload,
  type Pids,
  eventHeaders,
} from './common.js';

interface Phase {
  id: string;
  n: number;
  sent: number;
  received: number;
  duplicates: number;
  seen: Uint8Array;
  e2e: Histogram;
  handler: Histogram;
  added: Histogram;
  via: { u: number; s: number };
  firstSend: number;
  lastSend: number;
  lastReceive: number;
  publishErrors: number;
  lastPublishError: string;
  cpuBefore: Record<string, number | undefined>;
  cpuAfter: Record<string, number | undefined> | undefined;
  done: () => void;
}

const flags = parseFlags(process.argv.slice(2));
const server = flags.get('server') ?? 'nats://127.0.0.1:4222';
const mode = flags.get('mode') === 'core' ? 'core' : 'jetstream';
const count = numFlag(flags, 'count', 20_000);
const warmupCount = numFlag(flags, 'warmup', 500);
const rate = numFlag(flags, 'rate', 1000);
const rateSeconds = numFlag(flags, 'rate-seconds', 10);
const window = Math.max(1, numFlag(flags, 'window', 1000));
const firstMs = numFlag(flags, 'first-ms', 10_000);
const stallMs = numFlag(flags, 'stall-ms', 15_000);
const expectVia = flags.get('expect-via') === 's' ? 's' : 'u';
const pids: Pids = { ...(JSON.parse(flags.get('pids') ?? '{}') as Pids), load: process.pid };
const runTag = Math.random().toString(36).slice(2, 8);

const phases = new Map<string, Phase>();

function newPhase(id: string, n: number): Phase {
  const phase: Phase = {
    id,
    n,
    sent: 0,
    received: 0,
    duplicates: 0,
    seen: new Uint8Array(n),
    e2e: newHistogram(),
    handler: newHistogram(),
    added: newHistogram(),
    via: { u: 0, s: 0 },
    firstSend: 0,
    lastSend: 0,
    lastReceive: 0,
    publishErrors: 0,
    lastPublishError: '',
    cpuBefore: {},
    cpuAfter: undefined,
    done: () => {},
  };
  phases.set(id, phase);
  return phase;
}

function onFollowUp(text: string): void {
  const now = performance.now();
  let f: FollowUpPayload;
  try {
    f = JSON.parse(text) as FollowUpPayload;
  } catch {
    return;
  }
  const ph = phases.get(f.p);
  if (!ph) return;
  if (!(f.i >= 0 && f.i < ph.n) || ph.seen[f.i]) {
    ph.duplicates++;
    return;
  }
  ph.seen[f.i] = 1;
  ph.received++;
  const e2eUs = (now - f.t) * 1000;
  record(ph.e2e, e2eUs);
  record(ph.handler, f.h);
  record(ph.added, e2eUs - f.h);
  if (f.v === 's') ph.via.s++;
  else ph.via.u++;
  ph.lastReceive = now;
  if (ph.received === ph.n) {
    ph.cpuAfter = cpuSnapshot(pids);
    ph.done();
  }
}

class Publisher {
  #outstanding = 0;
  #wake: (() => void) | undefined;
  constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient | undefined,
  ) {}

  /** Publishes event i of the phase; with JetStream, waits while `window` PubAcks are outstanding. */
  async send(ph: Phase, i: number): Promise<void> {
    const t = performance.now();
    if (ph.sent === 0) ph.firstSend = t;
    const id = `${runTag}-${ph.id}-${i}`;
    const h = eventHeaders(id, i);
    const body = eventBody(ph.id, i, round(t, 3));
    ph.sent++;
    ph.lastSend = t;
    if (!this.js) {
      this.nc.publish(IN_SUBJECT, body, { headers: h });
      return;
    }
    while (this.#outstanding >= window) await new Promise<void>((resolve) => (this.#wake = resolve));
    this.#outstanding++;
    this.js.publish(IN_SUBJECT, body, { headers: h, msgID: id, timeout: 30_000 }).then(
      () => this.#release(),
      (err: unknown) => {
        ph.publishErrors++;
        ph.lastPublishError = err instanceof Error ? err.message : String(err);
        this.#release();
      },
    );
  }

  #release(): void {
    this.#outstanding--;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Until every PubAck is in. */
  async settled(): Promise<void> {
    while (this.#outstanding > 0) await new Promise<void>((resolve) => (this.#wake = resolve));
  }
}

/** Resolves when all follow-ups of the phase are in, nothing new came for `stall` ms, or the deadline passed. */
async function waitFor(ph: Phase, firstWithinMs: number, stall: number, deadlineMs: number): Promise<string | undefined> {
  const allIn = new Promise<void>((resolve) => (ph.done = resolve));
  if (ph.received === ph.n) return undefined;
  const start = performance.now();
  for (;;) {
    const tick = await Promise.race([allIn.then(() => 'done' as const), sleep(100).then(() => 'tick' as const)]);
    if (tick === 'done') return undefined;
    const now = performance.now();
    if (ph.received === 0 && now - start > firstWithinMs) return `no follow-up within ${Math.round(firstWithinMs / 1000)} s`;
    const lastActivity = Math.max(ph.lastReceive, ph.lastSend, start);
    if (ph.received > 0 && now - lastActivity > stall) return `stalled: ${ph.received}/${ph.n} follow-ups, none for ${Math.round(stall / 1000)} s`;
    if (now - start > deadlineMs) return `deadline: ${ph.received}/${ph.n} follow-ups after ${Math.round(deadlineMs / 1000)} s`;
  }
}

const mbOf = (kb: number | undefined) => (kb === undefined ? null : round(kb / 1024, 1));

function phaseReport(ph: Phase, wallMs: number) {
  const cpu = cpuDelta(ph.cpuBefore, ph.cpuAfter ?? cpuSnapshot(pids));
  const wallS = wallMs / 1000;
  const per1k: Record<string, number | null> = {};
  const util: Record<string, number | null> = {};
  for (const [name, s] of Object.entries(cpu)) {
    per1k[name] = s === null || ph.received === 0 ? null : round((s / ph.received) * 1000, 4);
    util[name] = s === null || wallS <= 0 ? null : round(s / wallS, 2);
  }
  return {
    sent: ph.sent,
    received: ph.received,
    lost: ph.sent - ph.received,
    duplicates: ph.duplicates,
    publishErrors: ph.publishErrors,
    lastPublishError: ph.lastPublishError || undefined,
    seconds: round(wallS, 3),
    publishSeconds: round((ph.lastSend - ph.firstSend) / 1000, 3),
    eventsPerSec: wallS > 0 ? Math.round(ph.received / wallS) : 0,
    latencyUs: summarise(ph.e2e),
    handlerUs: summarise(ph.handler),
    addedUs: summarise(ph.added),
    via: ph.via,
    cpuSeconds: cpu,
    cpuSecondsPer1k: per1k,
    cpuUtilisation: util,
    /** VmHWM (peak RSS so far) of each process at the end of the phase, in MB. */
    peakRssMb: Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, mbOf(statusKb(pid, 'VmHWM'))])),
  };
}

async function main(): Promise<void> {
  exitWhenParentGoes();
  const nc = await connect({ servers: server, name: 'bench-load', maxReconnectAttempts: 0 });
  const js = mode === 'jetstream' ? jetstream(nc) : undefined;
  nc.subscribe(OUT_WILDCARD, { callback: (_err, m) => onFollowUp(m.string()) });
  await nc.flush();
  const pub = new Publisher(nc, js);
  const result: Record<string, unknown> = { mode };
  try {
    // Warm-up: proves the pipeline flows (and how the handler is called), JITs every process.
    const warm = newPhase('w', warmupCount);
    for (let i = 0; i < warm.n; i++) {
      await pub.send(warm, i);
      if (i % 50 === 49) await sleep(5);
    }
    await pub.settled();
    const warmProblem = await waitFor(warm, firstMs, Math.min(stallMs, 10_000), 60_000);
    result.warmup = { sent: warm.sent, received: warm.received, via: warm.via, latencyUs: summarise(warm.e2e) };
    if (warm.received === 0) throw new Error(`no events flowed: ${warmProblem ?? 'no follow-up'}${warm.publishErrors ? ` (publish errors: ${warm.lastPublishError})` : ''}`);
    if (expectVia === 's' && warm.via.u > 0) {
      throw new Error(`handler.mode=stream, but the sidecar called unary Handle for ${warm.via.u}/${warm.received} warm-up events: stream mode not in effect`);
    }
    if (expectVia === 'u' && warm.via.s > 0) throw new Error(`handler.mode=unary, but ${warm.via.s} events came over HandleStream`);
    if (warmProblem) throw new Error(`warm-up incomplete: ${warmProblem}`);
    await sleep(300);

    // Fixed rate first: measured on a sidecar that has not just digested a saturation backlog.
    const n = Math.round(rate * rateSeconds);
    if (n > 0) {
      const fixed = newPhase('r', n);
      fixed.cpuBefore = cpuSnapshot(pids);
      const r0 = performance.now();
      let i = 0;
      while (i < n) {
        const due = Math.min(n, Math.floor(((performance.now() - r0) * rate) / 1000) + 1);
        while (i < due) await pub.send(fixed, i++);
        await sleep(1);
      }
      const rateProblem = await waitFor(fixed, firstMs, stallMs, 60_000);
      await pub.settled();
      const rEnd = fixed.received === fixed.n ? fixed.lastReceive : performance.now();
      result.rate = { target: rate, ...phaseReport(fixed, rEnd - r0), achievedRate: Math.round(fixed.sent / ((fixed.lastSend - r0) / 1000 || 1)), problem: rateProblem };
      await sleep(500);
    }
    // Saturation.
    const sat = newPhase('s', count);
    sat.cpuBefore = cpuSnapshot(pids);
    const t0 = performance.now();
    for (let i = 0; i < sat.n; i++) {
      await pub.send(sat, i);
      // Core publishes never wait: yield now and then so follow-ups are received while publishing.
      if (!js && i % 256 === 255) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const satProblem = await waitFor(sat, firstMs, stallMs, Math.max(120_000, count * 5));
    await pub.settled();
    const satEnd = sat.received === sat.n ? sat.lastReceive : performance.now();
    result.saturation = { ...phaseReport(sat, satEnd - t0), problem: satProblem };

    result.ok = true;
  } catch (err) {
    result.ok = false;
    result.reason = err instanceof Error ? err.message : String(err);
  } finally {
    emitResult(result);
    await nc.close().catch(() => {});
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    emitResult({ ok: false, reason: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
