/**
 * The same scenario — the seed's order flow: results, metrics, follow-ups with correlation, a bad
 * payload's error, and events sent through each language's EventPublisher client — against the
 * TypeScript, Python and Go example handlers, each behind a real sidecar and nats-server, in unary and
 * stream mode. What the sidecar observes must not depend on the handler's language: every observation
 * deep-equals the TypeScript handler's in unary mode. Also: Describe gives the same subscriptions in every
 * language, and the TypeScript EventPublisher client against a fake server.
 *
 * Needs `npm run bootstrap` (npm test runs it): the Python venv in .venv and the Go binaries in .tools/bin.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { Msg } from '@nats-io/nats-core';
import { connectPublisher, pb } from '@stufio/client';
import { EventClient, type NewEvent } from '../src/event-client.js';
import { silentLogger } from '../src/logger.js';
import { cleanup, collect, handlerProcess, natsClient, natsServer, ROOT, sidecar, sidecarConfig, waitUntil } from './helpers/index.js';

const run = promisify(execFile);

const LANGUAGES = ['typescript', 'python', 'go'] as const;
type Language = (typeof LANGUAGES)[number];

const VENV_PYTHON = join(ROOT, '.venv/bin/python');
const GO_BIN = join(ROOT, '.tools/bin');

/** How each language's example handler is started (handlerProcess adds `--address 127.0.0.1:0`). */
const HANDLERS: Record<Language, string[]> = {
  typescript: [process.execPath, '--import', 'tsx', join(ROOT, 'examples/order-handler.ts')],
  python: [VENV_PYTHON, join(ROOT, 'clients/python/examples/order_handler.py')],
  go: [join(GO_BIN, 'go-order-handler')],
};

/** A clear failure, not a skip, when bootstrap could not make a language's tools. */
function requireFile(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: run 'npm run bootstrap', which installs it or says why it cannot`);
}

afterAll(cleanup);

// ---------------------------------------------------------------- the scenario

const ORDER_1 = { user_id: 'u-1', total: 42.5, items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }], shipping_address: '7 Elm St' };
const ORDER_2 = { user_id: 'u-2', total: 10, items: [{ sku: 'c', qty: 5 }] };
const ORDER_3 = { user_id: 'u-3', total: 7.25, items: [{ sku: 'd', qty: 1 }, { sku: 'e', qty: 1 }, { sku: 'f', qty: 1 }], shipping_address: '3 Oak Rd' };
const ORDER_PUB = { user_id: 'u-4', total: 99.99, items: [{ sku: 'g', qty: 4 }], shipping_address: '4 Pine Ave' };

/** Sent with EventClient, one after another, each waited for: so every run stores the same sequence. */
const STEPS: { how: 'request' | 'publish'; event: NewEvent }[] = [
  { how: 'request', event: { eventType: 'order.created', eventId: 'xl-created-1', entityId: 'cust-1', correlationId: 'corr-1', payload: ORDER_1 } },
  { how: 'publish', event: { eventType: 'order.created', eventId: 'xl-created-2', entityId: 'cust-2', correlationId: 'corr-2', payload: ORDER_2 } },
  // No entity id: every example derives the order id from the event id ("ord-" + its first 8 characters).
  { how: 'publish', event: { eventType: 'order.created', eventId: 'xlnoent-0003', correlationId: 'corr-3', payload: ORDER_3 } },
  { how: 'request', event: { eventType: 'order.quote', eventId: 'xl-quote-1', entityId: 'quote-1', correlationId: 'corr-q', payload: { total: 19.99 } } },
  // Bad payloads: a permanent error, answered with the handler's message and dead-lettered.
  { how: 'request', event: { eventType: 'order.created', eventId: 'xl-bad-1', entityId: 'cust-bad', correlationId: 'corr-bad', payload: { user_id: 'u-9' } } },
  { how: 'request', event: { eventType: 'order.quote', eventId: 'xl-bad-quote', entityId: 'quote-bad', correlationId: 'corr-bq', payload: { total: 'ten' } } },
];
/** Sent by each language's EventPublisher client after the steps. */
interface ScriptEvent {
  eventType: string;
  eventId: string;
  entityId: string;
  correlationId: string;
  payload: unknown;
}
const PUBLISHED: ScriptEvent = { eventType: 'order.created', eventId: 'xl-pub-1', entityId: 'cust-pub', correlationId: 'corr-pub', payload: ORDER_PUB };
const REQUESTED: ScriptEvent = { eventType: 'order.quote', eventId: 'xl-pub-quote', entityId: 'quote-pub', correlationId: 'corr-pq', payload: { total: 100 } };
/** Events each run must see processed, per event type, before its observation is complete. */
const PROCESSED = { 'order.created': 5, 'order.quote': 3 };
const FOLLOW_UPS = 2 * 4 + 2;

/** Headers that differ on every run whatever the handler: times, trace ids, reply inboxes. Everything else is compared. */
const VOLATILE_HEADERS = new Set(['ce-time', 'traceparent', 'tracestate', 'stufio-reply-to']);

interface Observation {
  replies: Record<string, { result?: unknown; error?: string; errorCode?: string; correlation?: string; causation?: string }>;
  followUps: { subject: string; headers: Record<string, string>; payload: unknown }[];
  deadLetters: { subject: string; headers: Record<string, string>; body: string }[];
  metrics: Record<string, number>;
  publisher: { publish: Record<string, unknown>; request: Record<string, unknown> };
}

function headersOf(m: Msg): Record<string, string> {
  const out: Record<string, string> = {};
  if (m.headers) for (const k of m.headers.keys()) if (!VOLATILE_HEADERS.has(k.toLowerCase())) out[k.toLowerCase()] = m.headers.get(k);
  return out;
}

/** Every series of the handler's own metrics and the per-outcome counts; not durations, which are timings. */
function handlerMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!/^stufio_(handler_|events_processed_total|dead_letters)/.test(line)) continue;
    if (/^stufio_handler_(duration_seconds|serving)/.test(line)) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

const processed = (metrics: Record<string, number>, eventType: string) =>
  Object.entries(metrics)
    .filter(([k]) => k.startsWith('stufio_events_processed_total{') && k.includes(`event_type="${eventType}"`))
    .reduce((n, [, v]) => n + v, 0);

/** Publishes PUBLISHED and requests REQUESTED with `language`'s EventPublisher client; the sidecar's answers, snake_case. */
async function publishWith(language: Language, address: string): Promise<Observation['publisher']> {
  if (language === 'typescript') {
    const publisher = connectPublisher(address);
    try {
      const { eventId, ...published } = PUBLISHED;
      const p = await publisher.publish(published, { eventId });
      const { eventId: requestId, ...requested } = REQUESTED;
      const r = await publisher.request(requested, 10_000, { eventId: requestId });
      return {
        publish: { event_id: p.eventId, subject: p.subject, stream: p.stream, sequence: p.sequence, duplicate: p.duplicate },
        request: { event_id: r.eventId, result: r.result, error: r.error, error_code: r.errorCode },
      };
    } finally {
      publisher.close();
    }
  }
  // A tiny script per language: one event, the sidecar's answer printed as one JSON line.
  const command = language === 'python' ? [VENV_PYTHON, join(ROOT, 'clients/python/examples/publish_event.py')] : [join(GO_BIN, 'go-publish-event')];
  requireFile(command[0]!);
  const dash = language === 'python' ? '--' : '-';
  const once = async (e: ScriptEvent, request: boolean) => {
    const args = [...command.slice(1), `${dash}address`, address, `${dash}type`, e.eventType, `${dash}payload`, JSON.stringify(e.payload)];
    args.push(`${dash}entity-id`, e.entityId, `${dash}correlation-id`, e.correlationId, `${dash}event-id`, e.eventId);
    if (request) args.push(`${dash}request`);
    const { stdout } = await run(command[0]!, args, { cwd: ROOT, timeout: 30_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  };
  return { publish: await once(PUBLISHED, false), request: await once(REQUESTED, true) };
}

/** Runs the scenario against `language`'s handler, on a nats-server and sidecar of its own. */
/** `raw`: stream mode with handler.decode_payload false, so each client parses the JSON body itself. */
type Mode = 'unary' | 'stream' | 'raw';

async function observe(language: Language, mode: Mode): Promise<Observation> {
  requireFile(HANDLERS[language][0]!);
  const server = await natsServer();
  const nc = await natsClient(server.url);
  const handler = await handlerProcess({ command: HANDLERS[language] });
  const car = await sidecar(
    sidecarConfig(server.url, handler.address, {
      handler: { address: handler.address, health_interval_ms: 100, mode: mode === 'raw' ? 'stream' : mode, decode_payload: mode !== 'raw' },
      streams: [{ name: 'EVENTS', subjects: ['events.>'], storage: 'memory' }],
      subscriptions: [
        { event_type: 'order.created', delivery: 'jetstream', durable: 'order-handler' },
        { event_type: 'order.quote', delivery: 'core', queue_group: 'order-handler' },
      ],
      publisher: { listen: '127.0.0.1:0' },
    }),
  );
  const client = await EventClient.create(nc, { prefix: 'events', source: 'cross-language-test', logger: silentLogger() });
  const followUps = ['events.order.fulfillment', 'events.user.notification', 'events.order.quoted'].map((s) => collect(nc, s));
  const deadLetters = collect(nc, 'events.dlq.>');
  const scrape = async () => handlerMetrics(await (await fetch(`http://127.0.0.1:${car.httpAddress!.port}/metrics`)).text());
  const followUpCount = () => followUps.reduce((n, c) => n + c.messages.length, 0);

  const replies: Observation['replies'] = {};
  const done = { 'order.created': 0, 'order.quote': 0 } as Record<string, number>;
  for (const { how, event } of STEPS) {
    if (how === 'request') {
      const r = await client.request(event, 15_000);
      replies[event.eventId!] = { result: r.result, error: r.error, errorCode: r.errorCode, correlation: r.headers['ce-correlationid'], causation: r.headers['ce-causationid'] };
    } else {
      await client.publish(event);
    }
    done[event.eventType]! += 1;
    // One step at a time: the next starts when this one is processed and its follow-ups are out.
    await waitUntil(async () => processed(await scrape(), event.eventType) === done[event.eventType], 15_000, `${language}: ${event.eventId} processed`);
  }
  const publisher = await publishWith(language, car.publisherAddress!);

  await waitUntil(async () => {
    const m = await scrape();
    return Object.entries(PROCESSED).every(([type, n]) => processed(m, type) === n) && followUpCount() === FOLLOW_UPS;
  }, 15_000, `${language}: every event processed and ${FOLLOW_UPS} follow-ups published`);
  await new Promise((r) => setTimeout(r, 200)); // nothing more may arrive: a duplicate would show
  const bySubjectAndId = <T extends { subject: string; headers: Record<string, string> }>(a: T, b: T) =>
    `${a.subject} ${a.headers['ce-id']}`.localeCompare(`${b.subject} ${b.headers['ce-id']}`);
  const observation: Observation = {
    replies,
    followUps: followUps
      .flatMap((c) => c.messages)
      .map((m) => ({ subject: m.subject, headers: headersOf(m), payload: JSON.parse(Buffer.from(m.data).toString()) as unknown }))
      .sort(bySubjectAndId),
    deadLetters: deadLetters.messages.map((m) => ({ subject: m.subject, headers: headersOf(m), body: Buffer.from(m.data).toString() })).sort(bySubjectAndId),
    metrics: await scrape(),
    publisher,
  };
  for (const c of [...followUps, deadLetters]) c.stop();
  // The next run starts its own nats-server, handler and sidecar: stop these now rather than at the end.
  await car.stop();
  await handler.stop();
  return observation;
}

const observations: Partial<Record<`${Language} ${Mode}`, Observation>> = {};

describe.each(['unary', 'stream', 'raw'] as const)('%s mode', (mode) => {
  it.each(LANGUAGES)('runs the order scenario against the %s handler', async (language) => {
    const o = await observe(language, mode);
    observations[`${language} ${mode}`] = o;
    if (process.env.STUFIO_TEST_DUMP === '1') console.log(language, mode, JSON.stringify(o, null, 2));

    // What the scenario must produce, whichever handler answered (the comparisons below check the rest).
    expect(o.replies['xl-created-1']).toEqual({ result: { order_id: 'ord-cust-1' }, error: undefined, errorCode: undefined, correlation: 'corr-1', causation: 'xl-created-1' });
    expect(o.replies['xl-quote-1']?.result).toEqual({ total_with_tax: 23.99 });
    expect(o.replies['xl-bad-1']?.error).toContain('order.created needs a JSON payload with items');
    expect(o.replies['xl-bad-quote']?.error).toContain('order.quote needs a JSON payload with a numeric total');
    const f = o.followUps.find((m) => m.headers['ce-causationid'] === 'xl-created-1' && m.subject === 'events.order.fulfillment');
    expect(f).toMatchObject({
      headers: { 'ce-type': 'order.fulfillment', 'ce-subject': 'ord-cust-1', 'ce-correlationid': 'corr-1', 'ce-causationid': 'xl-created-1', 'ce-hops': '1' },
      payload: { order_id: 'ord-cust-1', shipping_address: '7 Elm St' },
    });
    const n = o.followUps.find((m) => m.headers['ce-causationid'] === 'xlnoent-0003' && m.subject === 'events.user.notification');
    expect(n).toMatchObject({ headers: { 'ce-subject': 'u-3', 'ce-correlationid': 'corr-3' }, payload: { user_id: 'u-3', message: 'Order #ord-xlnoent- received' } });
    expect(o.deadLetters.map((d) => [d.subject, d.headers['ce-id'], d.headers['stufio-dlq-reason']])).toContainEqual(['events.dlq.order.created', 'xl-bad-1', 'grpc_invalid_argument']);
    expect(o.metrics['stufio_handler_order_total_sum{event_type="order.created"}']).toBeCloseTo(42.5 + 10 + 7.25 + 99.99, 6);
    expect(o.metrics['stufio_handler_order_total_count{event_type="order.created"}']).toBe(4);
    expect(o.metrics['stufio_handler_items_count_sum{event_type="order.created"}']).toBe(2 + 1 + 3 + 1);
    expect(o.metrics['stufio_handler_success_total{event_type="order.created",value="true"}']).toBe(4);
    expect(o.metrics['stufio_handler_success_total{event_type="order.quote",value="true"}']).toBe(2);
    expect(o.publisher.publish).toMatchObject({ event_id: 'xl-pub-1', subject: 'events.order.created', stream: 'EVENTS', duplicate: false });
    expect(o.publisher.publish.sequence).toBeGreaterThan(0);
    expect(o.publisher.request).toEqual({ event_id: 'xl-pub-quote', result: { total_with_tax: 120 }, error: '', error_code: '' });
  });

  it.each(LANGUAGES.filter((l) => mode !== 'unary' || l !== 'typescript'))(
    'the %s handler gives exactly what the TypeScript handler gives in unary mode',
    (language) => {
      const reference = observations['typescript unary'];
      const observed = observations[`${language} ${mode}`];
      if (!reference || !observed) throw new Error('the scenario did not complete for this language or for TypeScript (see the failure above)');
      expect(normalise(observed)).toEqual(normalise(reference));
    },
  );
});

/** The stream sequence of the published event is the only number that may legitimately differ. */
function normalise(o: Observation): Observation {
  return { ...o, publisher: { ...o.publisher, publish: { ...o.publisher.publish, sequence: typeof o.publisher.publish.sequence } } };
}

// ---------------------------------------------------------------- Describe

describe('handler.describe: true', () => {
  const declared: Partial<Record<Language, unknown>> = {};

  it.each(LANGUAGES)('subscribes to what the %s handler declares, with no subscriptions in the file', async (language) => {
    requireFile(HANDLERS[language][0]!);
    const server = await natsServer();
    const nc = await natsClient(server.url);
    const handler = await handlerProcess({ command: HANDLERS[language] });
    const car = await sidecar(
      sidecarConfig(server.url, handler.address, {
        handler: { address: handler.address, health_interval_ms: 100, describe: true },
        streams: [{ name: 'EVENTS', subjects: ['events.>'], storage: 'memory' }],
        subscriptions: [],
      }),
    );
    const subs = car.subscriptions.map((s) => ({ ...s }));
    expect(subs).toMatchObject([
      { event_type: 'order.created', delivery: 'jetstream', durable: 'order-handler' },
      { event_type: 'order.quote', delivery: 'core', queue_group: 'order-handler' },
    ]);
    declared[language] = subs;
    // And they work: one request on each.
    const client = await EventClient.create(nc, { prefix: 'events', logger: silentLogger() });
    expect((await client.request({ eventType: 'order.quote', entityId: 'q', payload: { total: 10 } }, 10_000)).result).toEqual({ total_with_tax: 12 });
    expect((await client.request({ eventType: 'order.created', entityId: 'c', payload: ORDER_2 }, 10_000)).result).toEqual({ order_id: 'ord-c' });
    await car.stop();
    await handler.stop();
  });

  it('declares the same subscriptions, with the same defaults, in every language', () => {
    expect(declared.python).toEqual(declared.typescript);
    expect(declared.go).toEqual(declared.typescript);
  });
});

// ---------------------------------------------------------------- the TypeScript EventPublisher client

describe('connectPublisher (TypeScript client) against a fake EventPublisher', () => {
  let server: Server;
  let address: string;
  const published: pb.PublishRequest[] = [];
  const requested: pb.RequestRequest[] = [];

  beforeAll(async () => {
    server = new Server();
    server.addService(pb.EventPublisherService, {
      publish(call: ServerUnaryCall<pb.PublishRequest, pb.PublishResponse>, cb: sendUnaryData<pb.PublishResponse>) {
        published.push(call.request);
        if (call.request.event?.eventType === 'billing.charged') return cb({ code: status.PERMISSION_DENIED, details: 'not in publish.allow' });
        const eventId = call.request.eventId || 'generated-1';
        cb(null, { eventId, subject: `events.${call.request.event?.eventType}`, stream: 'EVENTS', sequence: 7, duplicate: eventId === 'seen-before' });
      },
      request(call: ServerUnaryCall<pb.RequestRequest, pb.RequestResponse>, cb: sendUnaryData<pb.RequestResponse>) {
        requested.push(call.request);
        if (call.request.event?.eventType === 'order.bad') return cb(null, { result: undefined, eventId: 'r-1', error: 'order.bad needs items', errorCode: '400' });
        cb(null, { result: { order_id: `ord-${call.request.event?.entityId}` }, eventId: 'r-1', error: '', errorCode: '' });
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    address = `127.0.0.1:${port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));

  it('publishes every field and returns the receipt', async () => {
    const publisher = connectPublisher(address);
    const receipt = await publisher.publish(
      { eventType: 'order.created', entityId: 'cust-1', payload: { total: 10.5 }, correlationId: 'corr-1', headers: { 'x-trace': '1' }, actor: { type: 'user', id: 'alice' } },
      { eventId: 'evt-1', causationId: 'cause-1' },
    );
    expect(receipt).toEqual({ eventId: 'evt-1', subject: 'events.order.created', stream: 'EVENTS', sequence: 7, duplicate: false });
    expect(published.at(-1)).toMatchObject({
      eventId: 'evt-1',
      causationId: 'cause-1',
      event: { eventType: 'order.created', entityId: 'cust-1', payload: { total: 10.5 }, correlationId: 'corr-1', headers: { 'x-trace': '1' }, actor: { type: 'user', id: 'alice' } },
    });
    expect((await publisher.publish({ eventType: 'order.created' }, { eventId: 'seen-before' })).duplicate).toBe(true);
    await publisher.publish({ eventType: 'file.uploaded', data: Buffer.from('raw'), contentType: 'text/plain' });
    expect(published.at(-1)?.event).toMatchObject({ payload: undefined, contentType: 'text/plain' });
    expect(Buffer.from(published.at(-1)!.event!.data).toString()).toBe('raw');
    publisher.close();
  });

  it("rejects with the sidecar's gRPC status", async () => {
    const publisher = connectPublisher(address);
    await expect(publisher.publish({ eventType: 'billing.charged' })).rejects.toMatchObject({ code: status.PERMISSION_DENIED } satisfies Partial<ServiceError>);
    publisher.close();
  });

  it("requests a result, and returns the handler's error without throwing", async () => {
    const publisher = connectPublisher(address);
    expect(await publisher.request({ eventType: 'order.created', entityId: 'cust-2' }, 1500, { eventId: 'req-1' })).toEqual({
      eventId: 'r-1',
      result: { order_id: 'ord-cust-2' },
      error: '',
      errorCode: '',
    });
    expect(requested.at(-1)).toMatchObject({ timeoutMs: 1500, eventId: 'req-1' });
    expect(await publisher.request({ eventType: 'order.bad' })).toMatchObject({ error: 'order.bad needs items', errorCode: '400', result: undefined });
    expect(requested.at(-1)?.timeoutMs).toBe(10_000);
    publisher.close();
  });

  it('takes its address from STUFIO_PUBLISHER_ADDRESS, and says so when there is none', async () => {
    const saved = process.env.STUFIO_PUBLISHER_ADDRESS;
    try {
      process.env.STUFIO_PUBLISHER_ADDRESS = address;
      const publisher = connectPublisher();
      expect(publisher.address).toBe(address);
      expect((await publisher.publish({ eventType: 'order.created' })).eventId).toBe('generated-1');
      publisher.close();
      delete process.env.STUFIO_PUBLISHER_ADDRESS;
      expect(() => connectPublisher()).toThrow(/STUFIO_PUBLISHER_ADDRESS/);
    } finally {
      if (saved === undefined) delete process.env.STUFIO_PUBLISHER_ADDRESS;
      else process.env.STUFIO_PUBLISHER_ADDRESS = saved;
    }
  });
});
