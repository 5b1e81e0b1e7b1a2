/**
 * `npm run bench`: the sidecar's throughput, latency, CPU and memory against the ceilings of the pieces it
 * is made of, every piece a separate process on this machine.
 *
 *   node dist/bench/run.js [--quick] [--events N] [--only core-unary,jetstream-stream,...]
 *                          [--storage memory|file] [--sleep-us N] [--rate N] [--rate-seconds S]
 *                          [--max-in-flight N] [--no-relay] [--no-ceilings] [--cpu-prof DIR] [--out DIR]
 *                          [--experiment nostack]   (diagnostic preloads into the sidecar, see sidecar-experiments.ts)
 *
 * Rows: {core, jetstream} × {unary, stream}, each with its own nats-server, bench handler and sidecar
 * (`node dist/src/cli.js run --config <temp yaml>`), driven by a load process (bench/load.ts). Ceilings:
 * bare gRPC unary and stream between a client process and the same handler, JetStream async publish and
 * consume+ack with a plain nats.js client, and a NATS-only relay in place of sidecar + handler.
 * Results: a table on stdout, bench/results/latest.json and bench/results/latest.svg. See bench/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, tmpdir, type as osType } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { findNatsServer, startNatsServer, stopAllNatsServers, type NatsServerHandle } from '../src/local-nats.js';
import { IN_STREAM, OUT_STREAM, OUT_WILDCARD, numFlag, parseFlags, round, sleep, statusKb } from './common.js';
import { describeExit, freePort, killAllNow, Proc, stopAll } from './procs.js';
import { printReport, renderSvg } from './report.js';
import type { BenchResults, CeilingResult, LoadResult, RowResult } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
// dist/bench/run.js → the repository root (tsconfig.build.json: rootDir ".", outDir "dist").
const root = resolve(here, '..', '..');
const distBench = here;
const cliJs = join(root, 'dist', 'src', 'cli.js');

const ROW_IDS = ['core-unary', 'core-stream', 'jetstream-unary', 'jetstream-stream'] as const;

interface Options {
  quick: boolean;
  events: number;
  warmup: number;
  rate: number;
  rateSeconds: number;
  storage: 'memory' | 'file';
  sleepUs: number;
  maxInFlight: number;
  window: number;
  only: Set<string>;
  relay: boolean;
  ceilings: boolean;
  cpuProf: string | undefined;
  /** Diagnostic preloads into the sidecar (bench/sidecar-experiments.ts); empty in a normal run. */
  experiments: string[];
  /** handler.decode_payload: false — the sidecar sends raw bodies and the handler parses them. */
  rawPayload: boolean;
  outDir: string;
}

function experimentList(value: string | undefined): string[] {
  const list = (value ?? '').split(',').filter(Boolean);
  for (const e of list) if (e !== 'nostack') throw new Error(`--experiment: unknown ${e} (nostack)`);
  return list;
}

function parseOptions(argv: string[]): Options {
  const f = parseFlags(argv);
  const known = new Set(['raw-payload', 'quick', 'events', 'warmup', 'rate', 'rate-seconds', 'storage', 'sleep-us', 'max-in-flight', 'window', 'only', 'no-relay', 'no-ceilings', 'cpu-prof', 'experiment', 'out', 'help']);
  for (const k of f.keys()) if (!known.has(k)) throw new Error(`unknown option --${k} (see bench/README.md)`);
  if (f.has('help')) {
    process.stdout.write('usage: node dist/bench/run.js [--quick] [--events N] [--only ROWS] [--storage memory|file] [--sleep-us N] [--rate N] [--rate-seconds S] [--max-in-flight N] [--no-relay] [--no-ceilings] [--cpu-prof DIR] [--experiment nostack] [--raw-payload] [--out DIR]\n');
    process.exit(0);
  }
  const quick = f.has('quick');
  const storage = f.get('storage') ?? 'memory';
  if (storage !== 'memory' && storage !== 'file') throw new Error('--storage must be memory or file');
  const only = new Set((f.get('only') ?? [...ROW_IDS, 'relay', 'ceilings'].join(',')).split(',').filter(Boolean));
  for (const o of only) if (![...ROW_IDS, 'relay', 'ceilings'].includes(o)) throw new Error(`--only: unknown row ${o} (rows: ${[...ROW_IDS, 'relay', 'ceilings'].join(', ')})`);
  const events = Math.floor(numFlag(f, 'events', quick ? 3000 : 40_000));
  if (events < 1) throw new Error('--events must be at least 1');
  return {
    quick,
    events,
    warmup: Math.floor(numFlag(f, 'warmup', quick ? 200 : 1000)),
    rate: numFlag(f, 'rate', 1000),
    rateSeconds: numFlag(f, 'rate-seconds', quick ? 2 : 10),
    storage,
    sleepUs: numFlag(f, 'sleep-us', 0),
    maxInFlight: Math.max(1, Math.floor(numFlag(f, 'max-in-flight', 1024))),
    window: Math.max(1, Math.floor(numFlag(f, 'window', 1000))),
    only,
    relay: !f.has('no-relay') && only.has('relay'),
    ceilings: !f.has('no-ceilings') && only.has('ceilings'),
    cpuProf: f.get('cpu-prof'),
    experiments: experimentList(f.get('experiment')),
    rawPayload: f.has('raw-payload'),
    outDir: resolve(f.get('out') ?? join(root, 'bench', 'results')),
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const mb = (kb: number | undefined) => (kb === undefined ? null : round(kb / 1024, 1));

let tmpRoot: string | undefined;
let aborted = false;

async function makeStreams(server: NatsServerHandle, withEvents: boolean, storage: Options['storage']): Promise<void> {
  const nc = await connect({ servers: server.url, name: 'bench-setup' });
  try {
    const jsm = await jetstreamManager(nc);
    const st = storage === 'file' ? StorageType.File : StorageType.Memory;
    const dupWindow = 120_000_000_000; // 2 min, the sidecar's default for streams it creates
    await jsm.streams.add({ name: OUT_STREAM, subjects: [OUT_WILDCARD], storage: st, duplicate_window: dupWindow });
    if (withEvents) await jsm.streams.add({ name: IN_STREAM, subjects: ['events.bench.>'], storage: st, duplicate_window: dupWindow });
  } finally {
    await nc.close();
  }
}

async function startHandler(opts: Options): Promise<{ proc: Proc; address: string }> {
  const proc = new Proc('handler', join(distBench, 'handler.js'), ['--address', '127.0.0.1:0', '--sleep-us', String(opts.sleepUs)]);
  const line = await proc.line((l) => l.startsWith('{'), 15_000, 'listening line');
  return { proc, address: (JSON.parse(line) as { listening: string }).listening };
}

function sidecarConfig(server: NatsServerHandle, handlerAddress: string, httpPort: number, delivery: 'core' | 'jetstream', mode: 'unary' | 'stream', opts: Options): string {
  const sub =
    delivery === 'jetstream'
      ? { event_type: 'bench.in', delivery: 'jetstream', stream: IN_STREAM, durable: 'bench', max_in_flight: opts.maxInFlight, ack_wait_ms: 60_000 }
      : // max_pending far above any burst: the core rows measure throughput, not load shedding.
        { event_type: 'bench.in', delivery: 'core', queue_group: 'bench', max_in_flight: opts.maxInFlight, max_pending: 10_000_000 };
  return toYaml({
    nats: { servers: [server.url], name: 'bench-sidecar' },
    subject_prefix: 'events',
    handler: { address: handlerAddress, timeout_ms: 30_000, mode, health_check: true, startup_timeout_ms: 15_000, decode_payload: !opts.rawPayload },
    subscriptions: [sub],
    publish: { allow: ['*'] },
    http: { listen: `127.0.0.1:${httpPort}` },
    shutdown: { grace_ms: 10_000 },
  });
}

async function waitReady(port: number, sidecar: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (sidecar.exit) throw new Error(`sidecar exited (${describeExit(sidecar.exit)}) while starting${sidecar.stderrTail() ? `: ${sidecar.stderrTail(800)}` : ''}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
      last = `${res.status} ${(await res.text()).slice(0, 200)}`;
      if (res.status === 200) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(`sidecar not ready within ${timeoutMs / 1000} s (last /readyz: ${last})${sidecar.stderrTail() ? `; stderr: ${sidecar.stderrTail(800)}` : ''}`);
}

function loadArgs(server: NatsServerHandle, delivery: 'core' | 'jetstream', expectVia: 'u' | 's', pids: Record<string, number | undefined>, opts: Options): string[] {
  return [
    '--server', server.url,
    '--mode', delivery,
    '--count', String(opts.events),
    '--warmup', String(opts.warmup),
    '--rate', String(opts.rate),
    '--rate-seconds', String(opts.rateSeconds),
    '--window', String(opts.window),
    '--expect-via', expectVia,
    '--pids', JSON.stringify(pids),
  ];
}

/** Upper bound of a load process's own bounded phases (warm-up 60 s, saturation, rate), plus slack. */
function loadTimeoutMs(opts: Options): number {
  return 60_000 + Math.max(120_000, opts.events * 5) + 60_000 + opts.rateSeconds * 1000 + 30_000;
}

/** Runs the load against whatever is consuming, failing fast if `watched` (sidecar or relay) dies. */
async function driveLoad(server: NatsServerHandle, delivery: 'core' | 'jetstream', expectVia: 'u' | 's', pids: Record<string, number | undefined>, watched: Proc, opts: Options): Promise<LoadResult> {
  const load = new Proc('load', join(distBench, 'load.js'), loadArgs(server, delivery, expectVia, pids, opts));
  const died = watched.exited.then((e) => {
    throw new Error(`${watched.name} exited (${describeExit(e)}) during the run${watched.stderrTail() ? `: ${watched.stderrTail(800)}` : ''}`);
  });
  died.catch(() => {});
  try {
    return await Promise.race([load.result<LoadResult>(loadTimeoutMs(opts)), died]);
  } finally {
    await load.stop(2000);
  }
}

function rowFromLoad(row: RowResult, res: LoadResult): void {
  if (!res.ok) {
    row.status = 'n/a';
    row.reason = res.reason ?? 'load failed';
    return;
  }
  row.status = 'ok';
  row.saturation = res.saturation;
  row.rate = res.rate;
  const problems = [res.saturation?.problem, res.rate?.problem].filter(Boolean);
  if (problems.length > 0) row.reason = problems.join('; ');
}

async function runSidecarRow(delivery: 'core' | 'jetstream', mode: 'unary' | 'stream', opts: Options): Promise<RowResult> {
  const row: RowResult = { id: `${delivery}-${mode}`, title: `${delivery} × ${mode}`, kind: 'sidecar', delivery, handlerMode: mode, status: 'n/a', peakRssMb: {} };
  let server: NatsServerHandle | undefined;
  let handler: Proc | undefined;
  let sidecar: Proc | undefined;
  try {
    server = await startNatsServer({ jetstream: true });
    await makeStreams(server, delivery === 'jetstream', opts.storage);
    const h = await startHandler(opts);
    handler = h.proc;
    const port = await freePort();
    const cfgFile = join(tmpRoot!, `sidecar-${row.id}.yaml`);
    writeFileSync(cfgFile, sidecarConfig(server, h.address, port, delivery, mode, opts));
    const nodeArgs = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`, `--cpu-prof-name=sidecar-${row.id}-${Date.now()}.cpuprofile`] : [];
    const env: NodeJS.ProcessEnv = { STUFIO_LOG_LEVEL: 'warn' };
    if (opts.experiments.length > 0) {
      nodeArgs.push('--import', pathToFileURL(join(distBench, 'sidecar-experiments.js')).href);
      env.STUFIO_BENCH_EXPERIMENTS = opts.experiments.join(',');
    }
    sidecar = new Proc('sidecar', cliJs, ['run', '--config', cfgFile], { env, nodeArgs });
    await waitReady(port, sidecar, 15_000);
    const pids = { sidecar: sidecar.pid, handler: handler.pid, nats: server.pid };
    const res = await driveLoad(server, delivery, mode === 'stream' ? 's' : 'u', pids, sidecar, opts);
    rowFromLoad(row, res);
    row.peakRssMb = { sidecar: mb(statusKb(sidecar.pid, 'VmHWM')), handler: mb(statusKb(handler.pid, 'VmHWM')), nats: mb(statusKb(server.pid, 'VmHWM')) };
  } catch (err) {
    row.status = 'n/a';
    row.reason = err instanceof Error ? err.message : String(err);
  } finally {
    if (sidecar) {
      await sidecar.stop(opts.cpuProf ? 30_000 : 15_000);
      const tail = sidecar.stderrTail(1500);
      if (tail) row.stderrTail = tail;
    }
    await handler?.stop(3000);
    await server?.stop();
  }
  return row;
}

async function runRelayRow(delivery: 'core' | 'jetstream', opts: Options): Promise<RowResult> {
  const row: RowResult = { id: `relay-${delivery}`, title: `NATS-only relay, ${delivery}`, kind: 'relay', delivery, handlerMode: 'unary', status: 'n/a', peakRssMb: {} };
  let server: NatsServerHandle | undefined;
  let relay: Proc | undefined;
  try {
    server = await startNatsServer({ jetstream: true });
    await makeStreams(server, delivery === 'jetstream', opts.storage);
    relay = new Proc('relay', join(distBench, 'relay.js'), ['--server', server.url, '--mode', delivery, '--max-in-flight', String(opts.maxInFlight)]);
    await relay.line((l) => l.includes('"ready"'), 15_000, 'ready line');
    const res = await driveLoad(server, delivery, 'u', { relay: relay.pid, nats: server.pid }, relay, opts);
    rowFromLoad(row, res);
    row.peakRssMb = { relay: mb(statusKb(relay.pid, 'VmHWM')), nats: mb(statusKb(server.pid, 'VmHWM')) };
  } catch (err) {
    row.status = 'n/a';
    row.reason = err instanceof Error ? err.message : String(err);
  } finally {
    await relay?.stop(3000);
    await server?.stop();
  }
  return row;
}

async function runCeiling(kind: string, args: string[], timeoutMs: number): Promise<CeilingResult> {
  const p = new Proc(`ceiling ${kind}`, join(distBench, 'ceiling.js'), ['--kind', kind, ...args]);
  try {
    return await p.result<CeilingResult>(timeoutMs);
  } catch (err) {
    return { ok: false, kind, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    await p.stop(2000);
  }
}

async function runCeilings(opts: Options): Promise<Record<string, CeilingResult>> {
  const out: Record<string, CeilingResult> = {};
  const timeout = Math.max(120_000, opts.events * 5);
  const count = String(opts.events);
  let handler: Proc | undefined;
  try {
    const h = await startHandler(opts);
    handler = h.proc;
    const pids = JSON.stringify({ handler: handler.pid });
    // Warm the handler (JIT) with a short run first, then measure.
    await runCeiling('grpc-unary', ['--address', h.address, '--count', String(Math.min(2000, opts.events)), '--concurrency', String(opts.maxInFlight)], timeout);
    say('  gRPC unary ...');
    out.grpcUnary = await runCeiling('grpc-unary', ['--address', h.address, '--count', count, '--concurrency', String(opts.maxInFlight), '--pids', pids], timeout);
    say('  gRPC stream ...');
    out.grpcStream = await runCeiling('grpc-stream', ['--address', h.address, '--count', count, '--window', String(opts.maxInFlight), '--pids', pids], timeout);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    out.grpcUnary ??= { ok: false, kind: 'grpc-unary', reason };
    out.grpcStream ??= { ok: false, kind: 'grpc-stream', reason };
  } finally {
    await handler?.stop(3000);
  }

  let server: NatsServerHandle | undefined;
  try {
    server = await startNatsServer({ jetstream: true });
    await makeStreams(server, true, opts.storage);
    const pids = JSON.stringify({ nats: server.pid });
    say('  JetStream publish ...');
    out.jsPublish = await runCeiling('js-pub', ['--server', server.url, '--count', count, '--window', String(opts.window), '--pids', pids], timeout);
    say('  JetStream consume+ack ...');
    out.jsConsume = await runCeiling('js-consume', ['--server', server.url, '--count', count, '--max-messages', String(opts.maxInFlight), '--pids', pids], timeout);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    out.jsPublish ??= { ok: false, kind: 'js-pub', reason };
    out.jsConsume ??= { ok: false, kind: 'js-consume', reason };
  } finally {
    await server?.stop();
  }
  return out;
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a && b ? round(a / b, 3) : null;
}

function addRatios(rows: RowResult[], ceilings: Record<string, CeilingResult>): void {
  const per = (c: CeilingResult | undefined) => (c?.ok ? c.perSec : undefined);
  for (const row of rows) {
    if (row.status !== 'ok' || !row.saturation) continue;
    const eps = row.saturation.eventsPerSec;
    const r: Record<string, number | null> = {};
    if (row.kind === 'sidecar') r[row.handlerMode === 'unary' ? 'vsGrpcUnary' : 'vsGrpcStream'] = ratio(eps, per(row.handlerMode === 'unary' ? ceilings.grpcUnary : ceilings.grpcStream));
    if (row.delivery === 'jetstream') {
      r.vsJsPublish = ratio(eps, per(ceilings.jsPublish));
      r.vsJsConsume = ratio(eps, per(ceilings.jsConsume));
    }
    if (row.kind === 'sidecar') {
      const relay = rows.find((x) => x.id === `relay-${row.delivery}` && x.status === 'ok');
      r.vsRelay = ratio(eps, relay?.saturation?.eventsPerSec);
    }
    row.ratios = r;
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const bin = findNatsServer();
  if (!bin) {
    process.stderr.write('bench: nats-server not found: run `npm run bootstrap` (or set STUFIO_NATS_SERVER_BIN)\n');
    return 1;
  }
  tmpRoot = mkdtempSync(join(tmpdir(), 'stufio-bench-'));
  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true });
  const cpuList = cpus();
  const results: BenchResults = {
    generatedAt: new Date().toISOString(),
    options: {
      quick: opts.quick,
      events: opts.events,
      warmup: opts.warmup,
      rate: opts.rate,
      rateSeconds: opts.rateSeconds,
      storage: opts.storage,
      handlerSleepUs: opts.sleepUs,
      maxInFlight: opts.maxInFlight,
      publishWindow: opts.window,
      eventBytes: 256,
      cpuProfile: opts.cpuProf ?? null,
      sidecarExperiments: opts.experiments,
    },
    machine: {
      cpus: cpuList.length,
      cpuModel: cpuList[0]?.model ?? 'unknown',
      memoryGb: round(totalmem() / 2 ** 30, 1),
      os: `${osType()} ${release()}`,
      node: process.version,
      natsServer: '',
      natsServerBin: bin,
      loadAvgAtStart: loadavg().map((l) => round(l, 2)),
    },
    ceilings: {},
    rows: [],
    durationSeconds: 0,
  };
  if (opts.experiments.length > 0) say(`EXPERIMENT: the sidecar runs with ${opts.experiments.join(', ')} preloaded (bench/sidecar-experiments.ts); not the product as shipped`);
  say(`stufio-sidecar bench${opts.quick ? ' (quick)' : ''}: ${opts.events} events of 256 B per saturation run, ${opts.rate}/s for ${opts.rateSeconds} s for latency; ${opts.storage} streams; max_in_flight ${opts.maxInFlight}; ${cpuList.length} CPUs, node ${process.version}`);

  const plan: [string, () => Promise<void>][] = [];
  if (opts.ceilings) {
    plan.push([
      'ceilings',
      async () => {
        results.ceilings = await runCeilings(opts);
      },
    ]);
  }
  for (const id of ROW_IDS) {
    if (!opts.only.has(id)) continue;
    const [delivery, mode] = id.split('-') as ['core' | 'jetstream', 'unary' | 'stream'];
    plan.push([`sidecar ${delivery} × ${mode}`, async () => void results.rows.push(await runSidecarRow(delivery, mode, opts))]);
  }
  if (opts.relay) {
    for (const delivery of ['core', 'jetstream'] as const) {
      plan.push([`NATS-only relay, ${delivery}`, async () => void results.rows.push(await runRelayRow(delivery, opts))]);
    }
  }

  for (const [name, step] of plan) {
    if (aborted) break;
    const t = Date.now();
    say(`· ${name} ...`);
    const before = round(loadavg()[0]!, 2);
    const rowsBefore = results.rows.length;
    await step();
    const last = results.rows.length > rowsBefore ? results.rows.at(-1) : undefined;
    if (last) last.loadAvg = { before, after: round(loadavg()[0]!, 2) };
    say(`  done in ${round((Date.now() - t) / 1000, 1)} s${name.startsWith('ceilings') || !last ? '' : last.status === 'ok' ? `: ${last.saturation?.eventsPerSec ?? 0} events/s` : `: n/a (${last.reason})`}`);
  }
  if (aborted) return 130;

  try {
    const { natsServerVersion } = await import('../src/local-nats.js');
    results.machine.natsServer = natsServerVersion(bin);
  } catch {
    results.machine.natsServer = 'unknown';
  }
  addRatios(results.rows, results.ceilings);
  results.durationSeconds = round((Date.now() - started) / 1000, 1);

  printReport(results, say);
  mkdirSync(opts.outDir, { recursive: true });
  writeFileSync(join(opts.outDir, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(opts.outDir, 'latest.svg'), renderSvg(results));
  say(`\nwrote ${join(opts.outDir, 'latest.json')} and latest.svg (${results.durationSeconds} s in all)`);
  if (opts.cpuProf) say(`CPU profiles of the sidecar in ${opts.cpuProf}: node dist/bench/prof-summary.js ${opts.cpuProf}/*.cpuprofile`);
  return 0;
}

async function cleanup(): Promise<void> {
  await stopAll(3000);
  await stopAllNatsServers().catch(() => {});
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
}

let interrupted = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted++;
    aborted = true;
    if (interrupted > 1) {
      killAllNow();
      process.exit(130);
    }
    say(`\nbench: ${sig}, stopping every process ...`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', killAllNow);

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await cleanup();
    process.exit(1);
  },
);
