/**
 * Bad input loses nothing and crashes nothing: malformed bodies and headers, missing ids, huge bodies, and
 * a seeded fuzz run of random bytes and random handler responses where every message must end acked,
 * replied or dead-lettered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import type { Sidecar } from '../src/sidecar.js';
import { cleanup, collect, handlerProcess, header, json, manager, natsClient, natsServer, sidecar, sidecarConfig, waitUntil, type HandlerProcess } from './helpers/index.js';

let nc: NatsConnection;
let jsm: JetStreamManager;
let handler: HandlerProcess;
let car: Sidecar;

beforeAll(async () => {
  const server = await natsServer();
  nc = await natsClient(server.url);
  jsm = await manager(nc);
  handler = await handlerProcess();
  car = await sidecar(
    sidecarConfig(server.url, handler.address, {
      streams: [{ name: 'IN', subjects: ['events.test.js.>'] }, { name: 'OUT', subjects: ['events.out.>', 'events.dlq.>'] }],
      subscriptions: [
        { event_type: 'test.js.>', delivery: 'jetstream', durable: 'bad-input', max_deliver: 2, backoff_ms: [20], max_in_flight: 32 },
        { event_type: 'test.core.>', delivery: 'core', max_in_flight: 32 },
      ],
      publish: { allow: ['out.>'], max_per_response: 4, max_payload_bytes: 2048, max_hops: 4, max_delay_ms: 0 },
    }),
  );
});

afterAll(cleanup);

const calls = (eventType: string) => handler.calls.filter((c) => c.event_type === eventType);

describe('malformed input', () => {
  it('answers a core request whose body claims JSON but is not, with a 400 error and no handler call', async () => {
    const h = natsHeaders();
    h.set('content-type', 'application/json');
    const r = await nc.request('events.test.core.badjson', '{"unterminated', { headers: h, timeout: 5000 });
    expect(header(r, 'Nats-Service-Error-Code')).toBe('400');
    expect(header(r, 'Nats-Service-Error')).toContain('not valid JSON');
    expect(calls('test.core.badjson')).toHaveLength(0);
  });

  it('passes a non-JSON body without content type through as raw data', async () => {
    const body = Buffer.from([0x00, 0xff, 0xfe, 0x10, 0x80]);
    const r = await nc.request('events.test.core.binary', body, { timeout: 5000 });
    expect(header(r, 'Nats-Service-Error')).toBeUndefined();
    await waitUntil(() => calls('test.core.binary').length === 1, 5000, 'handler call logged');
    const call = calls('test.core.binary')[0]!;
    expect(call.payload).toBeUndefined();
    expect(Buffer.from(call.data as string, 'base64')).toEqual(body);
  });

  it('keeps unicode and odd bytes in header values, and rejects an invalid ce-type', async () => {
    const h = natsHeaders();
    h.set('ce-specversion', '1.0');
    h.set('ce-id', 'ünïcødé-id-✓');
    h.set('ce-subject', 'entité 🚀\ttab');
    h.set('ce-correlationid', 'corr-ß');
    h.set('ce-hops', '0');
    const r = await nc.request('events.test.core.unicode', JSON.stringify({ publish: [{ event_type: 'out.unicode', payload: {} }] }), { headers: h, timeout: 5000 });
    expect(header(r, 'Nats-Service-Error')).toBeUndefined();
    await waitUntil(() => calls('test.core.unicode').length === 1, 5000, 'handler call logged');
    expect(calls('test.core.unicode')[0]).toMatchObject({ event_id: 'ünïcødé-id-✓', entity_id: 'entité 🚀\ttab', correlation_id: 'corr-ß' });
    const stored = await jsm.streams.getMessage('OUT', { last_by_subj: 'events.out.unicode' });
    expect(stored?.header.get('ce-correlationid')).toBe('corr-ß');

    const bad = natsHeaders();
    bad.set('ce-specversion', '1.0');
    bad.set('ce-type', 'has space.*');
    const r2 = await nc.request('events.test.core.badtype', '{}', { headers: bad, timeout: 5000 });
    expect(header(r2, 'Nats-Service-Error-Code')).toBe('400');
  });

  it('gives events with missing or empty ids an id (Nats-Msg-Id, else stream:seq, else a UUID)', async () => {
    const h = natsHeaders();
    h.set('ce-specversion', '1.0');
    h.set('ce-id', '');
    await nc.request('events.test.core.noid', '{}', { headers: h, timeout: 5000 });
    await waitUntil(() => calls('test.core.noid').length === 1, 5000, 'handler call logged');
    expect(calls('test.core.noid')[0]!.event_id).toMatch(/^[0-9a-f-]{36}$/);
    await jetstream(nc).publish('events.test.js.noid', '{}', { headers: h });
    await waitUntil(() => calls('test.js.noid').length === 1, 5000, 'handled');
    expect(calls('test.js.noid')[0]!.event_id).toMatch(/^IN:\d+$/);
  });

  it('handles a 900 KB body (under the server max_payload) and dead-letters a follow-up over max_payload_bytes', async () => {
    const big = JSON.stringify({ blob: 'x'.repeat(900 * 1024) });
    const r = await nc.request('events.test.core.huge', big, { timeout: 10_000 });
    expect(header(r, 'Nats-Service-Error')).toBeUndefined();
    // The handler's log line (1.2 MB of base64) may arrive after the reply.
    await waitUntil(() => calls('test.core.huge').length === 1, 5000, 'handler call logged');
    const dlq = collect(nc, 'events.dlq.test.js.hugeout');
    await jetstream(nc).publish('events.test.js.hugeout', JSON.stringify({ publish: [{ event_type: 'out.big', payload: 'y'.repeat(4096) }] }));
    await waitUntil(() => dlq.messages.length === 1, 5000, 'dead letter');
    expect(header(dlq.messages[0]!, 'stufio-dlq-reason')).toBe('payload_too_large');
    dlq.stop();
  });
});

/** Deterministic pseudo-random numbers (mulberry32), so a failing fuzz run can be repeated exactly. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EVENT_TYPES = ['out.a', 'out.b.c', 'out.*', 'out.>', 'bad type', '', 'out..x', 'dlq.out', 'not.allowed', 'out.' + 'z'.repeat(300)];

describe('fuzz', () => {
  it('ends every JetStream message acked or dead-lettered, answers every core request, and keeps running', { timeout: 120_000 }, async () => {
    const random = rng(20261204);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
    const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const randomResponse = () => {
      const r: Record<string, unknown> = {};
      if (random() < 0.5) r.publish = Array.from({ length: Math.floor(random() * 6) }, () => ({ event_type: pick(EVENT_TYPES), payload: random() < 0.2 ? 'p'.repeat(Math.floor(random() * 4000)) : { n: random() } }));
      if (random() < 0.2) r.fail_code = pick([1, 2, 3, 4, 5, 9, 12, 13, 14, 16]);
      if (random() < 0.1) r.disposition = pick(['retry', 'dead_letter']);
      if (random() < 0.3) r.metrics = { [pick(['a', 'b b', 'ç', ''])]: pick([1, true, 'x', -5.5]) };
      if (random() < 0.1) r.republish_self = true;
      return r;
    };
    const N = 300;
    const js = jetstream(nc);
    const coreReplies: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) {
      const h = natsHeaders();
      const kind = random();
      if (kind < 0.25) h.set('content-type', pick(['application/json', 'application/cloudevents+json', 'text/plain', 'application/octet-stream']));
      if (kind > 0.6) {
        h.set('ce-specversion', pick(['1.0', '0.3', '1.0']));
        if (random() < 0.8) h.set('ce-id', `fuzz-${i}`);
        if (random() < 0.3) h.set('ce-hops', pick(['0', '1', '3', '-1', 'x', '99999999']));
      }
      const body = random() < 0.6 ? Buffer.from(JSON.stringify(randomResponse())) : randomBytes(Math.floor(random() * 300));
      await js.publish('events.test.js.fuzz', body, { headers: h, msgID: `fuzz-js-${i}` });
      if (i % 3 === 0) coreReplies.push(nc.request('events.test.core.fuzz', body, { headers: h, timeout: 20_000 }));
    }
    // Every core request is answered: a result or a Nats-Service-Error, never a timeout.
    const replies = await Promise.allSettled(coreReplies);
    expect(replies.filter((r) => r.status === 'rejected')).toEqual([]);
    // Every JetStream message ends settled: nothing pending, nothing waiting for an ack.
    await waitUntil(async () => {
      const c = await jsm.consumers.info('IN', 'bad-input');
      return c.num_pending === 0 && c.num_ack_pending === 0;
    }, 90_000, 'fuzz events settled');
    expect(car.state).toBe('running');
    expect(handler.child.exitCode).toBeNull();
    const text = await (await fetch(`http://127.0.0.1:${car.httpAddress!.port}/metrics`)).text();
    const count = (outcome: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('stufio_events_processed_total{') && l.includes('event_type="test.js.fuzz"') && l.includes(`outcome="${outcome}"`))
        .reduce((n, l) => n + Number(l.split(' ')[1]), 0);
    // Each message settled exactly once as acked (success/handler_failure) or dead-lettered; retries came back.
    expect(count('success') + count('handler_failure') + count('dead_letter')).toBe(N);
    const r = await nc.request('events.test.core.after-fuzz', JSON.stringify({ result: 'alive' }), { timeout: 5000 });
    expect(json(r)).toBe('alive');
  });
});
