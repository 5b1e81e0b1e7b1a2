/**
 * `stufio-sidecar demo`: nats-server, the example order handler and the sidecar on this machine, a few
 * sample events, and what came out of them — results, follow-ups, metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/nats-core';
import { parseConfig } from './config.js';
import { EventClient } from './event-client.js';
import { errorMessage } from './errors.js';
import { headerMap } from './cloudevents.js';
import { findNatsServer, NatsServerNotFoundError, startNatsServer, type NatsServerHandle } from './local-nats.js';
import { createLogger } from './logger.js';
import { connectNats } from './nats-connection.js';
import { Sidecar } from './sidecar.js';

const out = (line = '') => process.stdout.write(`${line}\n`);

export async function runDemo(args: string[]): Promise<number> {
  const count = Number(args[args.indexOf('--events') + 1]) || 5;
  if (!findNatsServer()) {
    process.stderr.write(`${new NatsServerNotFoundError().message}\n`);
    return 1;
  }
  let server: NatsServerHandle | undefined;
  let handler: ChildProcess | undefined;
  let sidecar: Sidecar | undefined;
  let nc: NatsConnection | undefined;
  try {
    out('stufio-sidecar demo');
    server = await startNatsServer({ jetstream: true });
    out(`  nats-server ${server.version} with JetStream at ${server.url}`);

    const started = await startExampleHandler();
    handler = started.child;
    out(`  example handler (examples/order-handler) pid ${handler.pid} at ${started.address}`);

    const config = parseConfig({
      nats: { servers: [server.url], name: 'demo-sidecar' },
      handler: { address: started.address, timeout_ms: 5000 },
      http: { listen: '127.0.0.1:0' },
      streams: [{ name: 'EVENTS', subjects: ['events.>'], storage: 'memory' }],
      subscriptions: [
        { event_type: 'order.created', delivery: 'jetstream', stream: 'EVENTS', durable: 'order-handler' },
        { event_type: 'order.quote', delivery: 'core', queue_group: 'order-handler' },
      ],
    });
    // The demo prints what happens itself; the sidecar's logs (the bad payload's warning included) only on request.
    sidecar = new Sidecar(config, { logger: createLogger({ level: process.env.STUFIO_LOG_LEVEL ?? 'error' }) });
    await sidecar.start();
    const metricsUrl = `http://127.0.0.1:${sidecar.httpAddress!.port}/metrics`;
    out(`  sidecar ${sidecar.state}: order.created via JetStream (durable order-handler), order.quote via core NATS`);
    out(`  metrics at ${metricsUrl}`);
    out();

    nc = await connectNats(config.nats);
    const followUps: { type: string; h: Record<string, string>; body: string }[] = [];
    const watch = nc.subscribe('events.>', {
      callback: (_err, m) => {
        const h = headerMap(m.headers);
        if (h['ce-causationid']) followUps.push({ type: h['ce-type'] ?? m.subject, h, body: Buffer.from(m.data).toString('utf8') });
      },
    });
    await nc.flush();
    const client = await EventClient.create(nc, { prefix: 'events', source: 'stufio-sidecar/demo', logger: createLogger({ level: 'warn' }) });

    for (let i = 1; i <= count; i++) {
      const payload = { user_id: `u-${i}`, total: 10 * i + 0.5, items: Array.from({ length: i }, (_, k) => ({ sku: `sku-${k}`, qty: 1 })), shipping_address: `${i} Main St` };
      const correlationId = `demo-corr-${i}`;
      const reply = await client.request({ eventType: 'order.created', entityId: `cust-${i}`, correlationId, payload }, 10_000);
      out(`→ order.created #${i} (entity cust-${i}, correlation ${correlationId}) via ${reply.via}`);
      out(`  ← result ${reply.error ? `error: ${reply.error}` : JSON.stringify(reply.result)}`);
      await waitUntil(() => followUps.filter((f) => f.h['ce-causationid'] === reply.eventId).length >= 2, 5000);
      for (const f of followUps.filter((f) => f.h['ce-causationid'] === reply.eventId)) {
        out(`  ← follow-up ${f.type} entity=${f.h['ce-subject'] ?? ''} correlation=${f.h['ce-correlationid']} causation=${f.h['ce-causationid']!.slice(0, 8)}… hops=${f.h['ce-hops']} ${f.body}`);
      }
    }
    const quote = await client.request({ eventType: 'order.quote', entityId: 'cust-q', payload: { user_id: 'u-q', total: 100, items: [] } }, 10_000);
    out(`→ order.quote (core request/reply) ← result ${JSON.stringify(quote.result)}`);
    const bad = await client.request({ eventType: 'order.quote', payload: { nothing: true } }, 10_000);
    out(`→ order.quote with a bad payload ← error ${bad.errorCode}: ${bad.error}`);
    await waitUntil(() => followUps.length >= count * 2 + 1, 3000);
    watch.unsubscribe();

    out();
    out('summary (from /metrics)');
    const text = await (await fetch(metricsUrl)).text();
    for (const line of text.split('\n')) {
      if (/^stufio_(events_processed_total|followups_published_total|events_received_total)\{/.test(line) || /^stufio_handler_(order_total|items_count)_(sum|count)\{/.test(line) || /^stufio_handler_success_total\{/.test(line) || /^stufio_handler_duration_seconds_(sum|count)\{/.test(line)) {
        out(`  ${line}`);
      }
    }
    out();
    out(`demo done: ${count} orders handled, ${followUps.length} follow-ups seen`);
    return 0;
  } catch (err) {
    process.stderr.write(`demo failed: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    await nc?.close().catch(() => {});
    await sidecar?.stop();
    if (handler && handler.exitCode === null) {
      handler.kill('SIGTERM');
      await new Promise((resolve) => handler!.once('exit', resolve));
    }
    await server?.stop();
  }
}

/** Starts the example handler on a free port; resolves with the address it printed. */
export async function startExampleHandler(extraArgs: string[] = []): Promise<{ child: ChildProcess; address: string }> {
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const file = fileURLToPath(new URL(`../examples/order-handler.${ext}`, import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, file, '--address', '127.0.0.1:0', ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('example handler did not start within 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`example handler exited with code ${code}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { listening: string }).listening);
      } catch {
        reject(new Error(`unexpected output from the example handler: ${line}`));
      }
    });
  });
  return { child, address };
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}
