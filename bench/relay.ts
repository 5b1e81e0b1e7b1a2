/**
 * A NATS-only stand-in for sidecar + handler, as a ceiling for the whole pipeline: it takes the bench events
 * exactly as the sidecar would (core queue subscription, or the durable pull consumer with the sidecar's
 * settings), and for each one publishes the follow-up with a JetStream publish (PubAck awaited, Nats-Msg-Id
 * and CloudEvents headers set), then acks. No gRPC, no CloudEvents decoding, no validation, no metrics: what
 * is left is the cost of the NATS traffic itself in one Node process.
 *
 *   node dist/bench/relay.js --server nats://... --mode core|jetstream [--max-in-flight 1024]
 *
 * Prints `{"ready": true}` once subscribed; runs until SIGTERM.
 */
import { createHash } from 'node:crypto';
import { headers as natsHeaders, type Msg } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { exitWhenParentGoes, IN_STREAM, IN_SUBJECT, numFlag, OUT_TYPE, parseFlags, PREFIX, type FollowUpPayload } from './common.js';

const flags = parseFlags(process.argv.slice(2));
const server = flags.get('server') ?? 'nats://127.0.0.1:4222';
const mode = flags.get('mode') === 'core' ? 'core' : 'jetstream';
const maxInFlight = numFlag(flags, 'max-in-flight', 1024);
const OUT_SUBJECT = `${PREFIX}.${OUT_TYPE}`;

async function main(): Promise<void> {
  exitWhenParentGoes();
  const nc = await connect({ servers: server, name: 'bench-relay' });
  const js = jetstream(nc);
  let free = maxInFlight;
  let wake: (() => void) | undefined;
  const release = () => {
    free++;
    const w = wake;
    wake = undefined;
    w?.();
  };

  const relay = (data: Uint8Array, hdrs: Msg['headers'], settle: () => void, fail: () => void) => {
    const p = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as { p: string; i: number; t: number };
    const parentId = hdrs?.get('ce-id') ?? '';
    const id = createHash('sha256').update(`${parentId}\u00000`).digest('hex').slice(0, 32);
    const h = natsHeaders();
    h.set('ce-specversion', '1.0');
    h.set('ce-id', id);
    h.set('ce-type', OUT_TYPE);
    h.set('ce-source', 'stufio-bench/relay');
    h.set('ce-time', new Date().toISOString());
    h.set('ce-correlationid', parentId);
    h.set('ce-causationid', parentId);
    h.set('ce-hops', '1');
    h.set('content-type', 'application/json');
    const out: FollowUpPayload = { p: p.p, i: p.i, t: p.t, h: 0, v: 'u' };
    js.publish(OUT_SUBJECT, Buffer.from(JSON.stringify(out)), { headers: h, msgID: id, timeout: 30_000 }).then(
      () => {
        settle();
        release();
      },
      () => {
        fail();
        release();
      },
    );
  };

  if (mode === 'core') {
    const sub = nc.subscribe(IN_SUBJECT, { queue: 'bench' });
    await nc.flush();
    process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
    void (async () => {
      for await (const m of sub) {
        while (free <= 0) await new Promise<void>((resolve) => (wake = resolve));
        free--;
        relay(m.data, m.headers, () => {}, () => {});
      }
    })();
  } else {
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(IN_STREAM, {
      durable_name: 'relay',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: IN_SUBJECT,
      ack_wait: 30_000_000_000,
      max_ack_pending: Math.max(1000, maxInFlight * 4),
    });
    const consumer = await js.consumers.get(IN_STREAM, 'relay');
    const messages = await consumer.consume({ max_messages: maxInFlight });
    process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
    void (async () => {
      for await (const m of messages) {
        while (free <= 0) await new Promise<void>((resolve) => (wake = resolve));
        free--;
        const jm: JsMsg = m;
        relay(jm.data, jm.headers, () => jm.ack(), () => jm.nak());
      }
    })();
  }

  const shutdown = () => void nc.close().finally(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench relay failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
