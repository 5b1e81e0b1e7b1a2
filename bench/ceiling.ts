/**
 * Ceilings: the same kinds of processes talking to each other without the sidecar in between.
 *
 *   grpc-unary   many concurrent unary Handle calls straight to the bench handler       (calls/s)
 *   grpc-stream  one HandleStream bidi stream, --window messages outstanding            (messages/s)
 *   js-pub       async JetStream publishes of the bench events, --window PubAcks open   (publishes/s)
 *   js-consume   a durable pull consumer draining the stream, acking each message       (messages/s)
 *
 *   node dist/bench/ceiling.js --kind grpc-unary --address 127.0.0.1:PORT --count N [--concurrency C]
 *   node dist/bench/ceiling.js --kind js-pub --server nats://... --count N [--window W]
 *
 * The gRPC requests are the EventMessage the sidecar would build for a bench event (same body, parsed
 * payload, CloudEvents headers), so the handler does the same work. Prints one `@@result {...}` line.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { pb, type EventMessage } from '@stufio/client';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  cpuDelta,
  cpuSnapshot,
  emitResult,
  eventBody,
  exitWhenParentGoes,
  IN_STREAM,
  IN_SUBJECT,
  IN_TYPE,
  newHistogram,
  numFlag,
  parseFlags,
  record,
  round,
  summarise,
  type Pids,
  eventHeaders,
} from './common.js';

const flags = parseFlags(process.argv.slice(2));
const kind = flags.get('kind') ?? '';
const count = numFlag(flags, 'count', 20_000);
const pids: Pids = { ...(JSON.parse(flags.get('pids') ?? '{}') as Pids), client: process.pid };

function benchEvent(i: number): EventMessage {
  const id = `ceiling-${i}`;
  const body = eventBody('c', i, round(performance.now(), 3));
  const headers: Record<string, string> = {
    'ce-specversion': '1.0',
    'ce-id': id,
    'ce-type': IN_TYPE,
    'ce-source': 'stufio-bench/load',
    'ce-subject': `e-${i % 1000}`,
    'ce-time': new Date().toISOString(),
    'content-type': 'application/json',
  };
  return {
    eventId: id,
    eventType: IN_TYPE,
    entityId: `e-${i % 1000}`,
    correlationId: id,
    causationId: '',
    source: 'stufio-bench/load',
    time: new Date(),
    contentType: 'application/json',
    data: body,
    payload: JSON.parse(body.toString('utf8')) as unknown,
    headers,
    actor: undefined,
    delivery: { subject: IN_SUBJECT, attempt: 1, stream: '', streamSequence: 0, replyExpected: false, consumer: 'bench', mode: 'core' },
    hops: 0,
    traceparent: '',
  };
}

function grpcClient(address: string) {
  return new pb.EventHandlerClient(address, credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
}

async function grpcUnary(address: string, concurrency: number) {
  const client = grpcClient(address);
  // Connect first, so the figure is calls, not the handshake.
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const rtt = newHistogram();
  let issued = 0;
  let done = 0;
  let errors = 0;
  let lastError = '';
  const cpu0 = cpuSnapshot(pids);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const one = () => {
      if (issued >= count) return;
      const i = issued++;
      const s = performance.now();
      client.handle(benchEvent(i), new Metadata(), { deadline: Date.now() + 30_000 }, (err: ServiceError | null) => {
        record(rtt, (performance.now() - s) * 1000);
        if (err) {
          errors++;
          lastError = err.message;
        }
        if (++done === count) resolve();
        else one();
      });
    };
    for (let k = 0; k < Math.min(concurrency, count); k++) one();
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
  client.close();
  return { count, concurrency, seconds: round(seconds, 3), perSec: Math.round(count / seconds), errors, lastError: lastError || undefined, rttUs: summarise(rtt), cpuSeconds: cpu };
}

async function grpcStream(address: string, windowSize: number) {
  const client = grpcClient(address);
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const call = client.handleStream();
  const sentAt = new Map<string, number>();
  const rtt = newHistogram();
  let received = 0;
  let missingId = 0;
  let wake: (() => void) | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    call.on('data', (r: pb.HandlerResponse) => {
      const s = sentAt.get(r.eventId);
      if (s === undefined) missingId++;
      else {
        sentAt.delete(r.eventId);
        record(rtt, (performance.now() - s) * 1000);
      }
      received++;
      const w = wake;
      wake = undefined;
      w?.();
      if (received === count) resolve();
    });
    call.on('error', reject);
  });
  const cpu0 = cpuSnapshot(pids);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    while (i - received >= windowSize) await new Promise<void>((resolve) => (wake = resolve));
    const e = benchEvent(i);
    sentAt.set(e.eventId, performance.now());
    if (!call.write(e)) await new Promise<void>((resolve) => call.once('drain', resolve));
  }
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
  call.end();
  client.close();
  return { count, window: windowSize, seconds: round(seconds, 3), perSec: Math.round(count / seconds), responsesWithoutEventId: missingId, rttUs: summarise(rtt), cpuSeconds: cpu };
}

async function jsPublish(server: string, windowSize: number) {
  const nc = await connect({ servers: server, name: 'bench-ceiling', maxReconnectAttempts: 0 });
  const js = jetstream(nc);
  let outstanding = 0;
  let errors = 0;
  let lastError = '';
  let wake: (() => void) | undefined;
  const release = () => {
    outstanding--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const cpu0 = cpuSnapshot(pids);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    while (outstanding >= windowSize) await new Promise<void>((resolve) => (wake = resolve));
    const id = `ceiling-${i}`;
    const h = eventHeaders(id, i);
    outstanding++;
    js.publish(IN_SUBJECT, eventBody('c', i, round(performance.now(), 3)), { headers: h, msgID: id, timeout: 30_000 }).then(release, (err: unknown) => {
      errors++;
      lastError = err instanceof Error ? err.message : String(err);
      release();
    });
  }
  while (outstanding > 0) await new Promise<void>((resolve) => (wake = resolve));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
  await nc.close();
  return { count, window: windowSize, seconds: round(seconds, 3), perSec: Math.round(count / seconds), errors, lastError: lastError || undefined, cpuSeconds: cpu };
}

async function jsConsume(server: string, maxMessages: number) {
  const nc = await connect({ servers: server, name: 'bench-ceiling', maxReconnectAttempts: 0 });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  // The consumer the sidecar would make (see JetStreamSource): explicit acks, max_ack_pending 4 × in flight.
  await jsm.consumers.add(IN_STREAM, {
    durable_name: 'ceiling',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: IN_SUBJECT,
    ack_wait: 30_000_000_000,
    max_ack_pending: Math.max(1000, maxMessages * 4),
  });
  const consumer = await js.consumers.get(IN_STREAM, 'ceiling');
  const cpu0 = cpuSnapshot(pids);
  const t0 = performance.now();
  const messages = await consumer.consume({ max_messages: maxMessages });
  let n = 0;
  for await (const m of messages) {
    m.ack();
    if (++n >= count) break;
  }
  await nc.flush();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuDelta(cpu0, cpuSnapshot(pids));
  await messages.close().catch(() => {});
  await nc.close();
  return { count: n, maxMessages, seconds: round(seconds, 3), perSec: Math.round(n / seconds), cpuSeconds: cpu };
}

async function main(): Promise<void> {
  exitWhenParentGoes();
  const address = flags.get('address') ?? '127.0.0.1:50051';
  const server = flags.get('server') ?? 'nats://127.0.0.1:4222';
  switch (kind) {
    case 'grpc-unary':
      emitResult({ ok: true, kind, ...(await grpcUnary(address, numFlag(flags, 'concurrency', 1024))) });
      break;
    case 'grpc-stream':
      emitResult({ ok: true, kind, ...(await grpcStream(address, numFlag(flags, 'window', 1024))) });
      break;
    case 'js-pub':
      emitResult({ ok: true, kind, ...(await jsPublish(server, numFlag(flags, 'window', 1000))) });
      break;
    case 'js-consume':
      emitResult({ ok: true, kind, ...(await jsConsume(server, numFlag(flags, 'max-messages', 1024))) });
      break;
    default:
      throw new Error(`unknown --kind ${kind}`);
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    emitResult({ ok: false, kind, reason: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
