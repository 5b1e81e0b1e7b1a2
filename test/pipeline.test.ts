/**
 * The whole pipeline against a real nats-server and a real handler process: consume → Handle →
 * follow-ups → reply → ack, on core and JetStream subscriptions, and what happens to bad responses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { DiscardPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { EventClient } from '../src/event-client.js';
import { silentLogger } from '../src/logger.js';
import type { Sidecar } from '../src/sidecar.js';
import { cleanup, collect, handlerProcess, header, json, manager, natsClient, natsServer, sidecar, sidecarConfig, waitUntil, type HandlerProcess } from './helpers/index.js';

// Every behaviour must hold in both handler modes: one unary call per event, or events over HandleStream.
describe.each(['unary', 'stream'] as const)('%s mode', (mode) => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let handler: HandlerProcess;
  let car: Sidecar;
  let client: EventClient;

  const STREAM_SUBJECTS = ['events.order.>', 'events.user.>', 'events.test.js.>', 'events.dlq.>', 'events.followup.>'];

  beforeAll(async () => {
    const server = await natsServer();
    nc = await natsClient(server.url);
    jsm = await manager(nc);
    // A stream that refuses a second message: a follow-up published there fails until the test purges it.
    await jsm.streams.add({ name: 'AUDIT', subjects: ['events.audit.>'], max_msgs: 1, discard: DiscardPolicy.New });
    handler = await handlerProcess();
    car = await sidecar(
      sidecarConfig(server.url, handler.address, {
        streams: [{ name: 'EVENTS', subjects: STREAM_SUBJECTS }],
        subscriptions: [
          { event_type: 'order.created', delivery: 'jetstream', stream: 'EVENTS', durable: 'orders' },
          { event_type: 'test.js.>', delivery: 'jetstream', durable: 'tests-js', max_deliver: 3, backoff_ms: [100], ack_wait_ms: 5000 },
          { event_type: 'test.core.>', delivery: 'core', queue_group: 'tests-core' },
        ],
        publish: { allow: ['order.*', 'user.*', 'followup.>', 'audit.>', 'test.>'], max_per_response: 5, max_payload_bytes: 4096, max_hops: 3 },
        handler: { address: handler.address, health_interval_ms: 100, mode },
      }),
    );
    client = await EventClient.create(nc, { prefix: 'events', logger: silentLogger() });
  });

  afterAll(cleanup);

  const callsFor = (eventId: string) => handler.calls.filter((c) => c.event_id === eventId);
  const metricsText = async () => (await fetch(`http://127.0.0.1:${car.httpAddress!.port}/metrics`)).text();

  describe('JetStream delivery', () => {
    it('runs the seed order flow: result to the requester, follow-ups with correlation, causation and hops', async () => {
      const fulfillment = collect(nc, 'events.order.fulfillment');
      const notification = collect(nc, 'events.user.notification');
      const payload = { user_id: 'u-7', total: 42.5, items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }], shipping_address: '7 Elm St' };
      const reply = await client.request({ eventType: 'order.created', entityId: 'cust-7', correlationId: 'corr-7', payload }, 10_000);
      expect(reply.via).toBe('jetstream');
      expect(reply.error).toBeUndefined();
      expect(reply.result).toEqual({ order_id: 'ord-cust-7' });
      expect(reply.headers['ce-correlationid']).toBe('corr-7');

      await waitUntil(() => fulfillment.messages.length === 1 && notification.messages.length === 1, 5000, 'follow-ups');
      const f = fulfillment.messages[0]!;
      const n = notification.messages[0]!;
      expect(json(f)).toEqual({ order_id: 'ord-cust-7', shipping_address: '7 Elm St' });
      expect(json(n)).toEqual({ user_id: 'u-7', message: 'Order #ord-cust-7 received' });
      for (const m of [f, n]) {
        expect(header(m, 'ce-correlationid')).toBe('corr-7');
        expect(header(m, 'ce-causationid')).toBe(reply.eventId);
        expect(header(m, 'ce-hops')).toBe('1');
        expect(header(m, 'ce-specversion')).toBe('1.0');
        expect(header(m, 'Nats-Msg-Id')).toBe(header(m, 'ce-id'));
      }
      expect(header(f, 'ce-type')).toBe('order.fulfillment');
      expect(header(f, 'ce-subject')).toBe('ord-cust-7');
      // Both follow-ups were stored by the stream, not only sent.
      const stored = await jsm.streams.getMessage('EVENTS', { last_by_subj: 'events.order.fulfillment' });
      expect(stored?.header.get('ce-causationid')).toBe(reply.eventId);
      fulfillment.stop();
      notification.stop();
    });

    it('accepts a plain message with no ce- headers: type from the subject, id from Nats-Msg-Id, JSON payload', async () => {
      const js = (await import('@nats-io/jetstream')).jetstream(nc);
      await js.publish('events.test.js.plain', JSON.stringify({ result: 'plain-ok' }), { msgID: 'plain-id-1' });
      await waitUntil(() => callsFor('plain-id-1').length === 1, 5000, 'plain event handled');
      const call = callsFor('plain-id-1')[0]!;
      expect(call.event_type).toBe('test.js.plain');
      expect(call.correlation_id).toBe('plain-id-1');
      expect(call.payload).toEqual({ result: 'plain-ok' });
      expect(call.mode).toBe('jetstream');
      expect(call.attempt).toBe(1);
    });

    it('gives a plain message without Nats-Msg-Id the id <stream>:<sequence>', async () => {
      nc.publish('events.test.js.noid', 'not json at all');
      await waitUntil(() => handler.calls.some((c) => c.event_type === 'test.js.noid'), 5000, 'handled');
      const call = handler.calls.find((c) => c.event_type === 'test.js.noid')!;
      expect(call.event_id).toMatch(/^EVENTS:\d+$/);
      expect(call.payload).toBeUndefined();
      expect(Buffer.from(call.data as string, 'base64').toString()).toBe('not json at all');
    });

    it('reads binary-mode CloudEvents attributes', async () => {
      const h = natsHeaders();
      h.set('ce-specversion', '1.0');
      h.set('ce-id', 'bin-1');
      h.set('ce-type', 'test.js.binary');
      h.set('ce-source', 'tests');
      h.set('ce-subject', 'entity-9');
      h.set('ce-time', '2026-01-02T03:04:05.000Z');
      h.set('ce-correlationid', 'corr-bin');
      h.set('ce-causationid', 'cause-0');
      h.set('ce-actortype', 'user');
      h.set('ce-actorid', 'alice');
      h.set('ce-hops', '2');
      h.set('content-type', 'application/json');
      nc.publish('events.test.js.binary', JSON.stringify({ a: 1 }), { headers: h });
      await waitUntil(() => callsFor('bin-1').length === 1, 5000, 'binary event handled');
      expect(callsFor('bin-1')[0]).toMatchObject({
        event_type: 'test.js.binary',
        entity_id: 'entity-9',
        correlation_id: 'corr-bin',
        causation_id: 'cause-0',
        hops: 2,
        source: 'tests',
        actor: { type: 'user', id: 'alice' },
        payload: { a: 1 },
        time: '2026-01-02T03:04:05.000Z',
      });
    });

    it('reads structured-mode CloudEvents', async () => {
      const h = natsHeaders();
      h.set('content-type', 'application/cloudevents+json');
      const ce = { specversion: '1.0', id: 'struct-1', type: 'test.js.structured', source: 's', subject: 'ent-s', correlationid: 'corr-s', data: { b: [1, 2] } };
      nc.publish('events.test.js.structured', JSON.stringify(ce), { headers: h });
      await waitUntil(() => callsFor('struct-1').length === 1, 5000, 'structured event handled');
      expect(callsFor('struct-1')[0]).toMatchObject({ event_type: 'test.js.structured', entity_id: 'ent-s', correlation_id: 'corr-s', payload: { b: [1, 2] } });
    });

    it('naks a failed handler call and succeeds on the redelivery', async () => {
      const receipt = await client.publish({ eventType: 'test.js.flaky', payload: { fail_code: 14, fail_attempts: 1 } });
      await waitUntil(() => callsFor(receipt.eventId).length === 2, 5000, 'redelivery');
      expect(callsFor(receipt.eventId).map((c) => c.attempt)).toEqual([1, 2]);
      await waitUntil(async () => /stufio_events_processed_total\{event_type="test.js.flaky",outcome="success"\} 1/.test(await metricsText()), 5000, 'success counted');
      expect(await metricsText()).toMatch(/stufio_events_processed_total\{event_type="test.js.flaky",outcome="retry"\} 1/);
    });

    it('acks only after every follow-up is stored, and a redelivery does not duplicate the ones already stored', async () => {
      await nc.request('events.audit.filler', 'x').catch(() => undefined);
      await waitUntil(async () => (await jsm.streams.info('AUDIT')).state.messages === 1, 5000, 'AUDIT full');
      const receipt = await client.publish({
        eventType: 'test.js.partial',
        payload: { publish: [{ event_type: 'followup.one', payload: { n: 1 } }, { event_type: 'audit.two', payload: { n: 2 } }] },
      });
      // Attempt 1: followup.one is stored, audit.two is refused by the full stream → nak, not ack.
      await waitUntil(() => callsFor(receipt.eventId).length >= 2, 5000, 'a retry after the refused follow-up');
      const consumer = await jsm.consumers.info('EVENTS', 'tests-js');
      expect(consumer.num_redelivered).toBeGreaterThan(0);
      await jsm.streams.purge('AUDIT');
      await waitUntil(async () => (await jsm.streams.info('AUDIT')).state.messages === 1, 10_000, 'audit.two stored after the purge');
      await waitUntil(async () => (await jsm.consumers.info('EVENTS', 'tests-js')).num_ack_pending === 0, 5000, 'acked');
      // followup.one was published on every attempt with the same Nats-Msg-Id: the stream kept one copy.
      const ones = await jsm.streams.info('EVENTS', { subjects_filter: 'events.followup.one' });
      expect(ones.state.subjects?.['events.followup.one']).toBe(1);
      const stored = await jsm.streams.getMessage('EVENTS', { last_by_subj: 'events.followup.one' });
      expect(stored?.header.get('ce-causationid')).toBe(receipt.eventId);
    });

    it('dead-letters an invalid response (wildcard event type) at once, with the reason and the original body', async () => {
      const dlq = collect(nc, 'events.dlq.test.js.bad');
      const payload = { publish: [{ event_type: 'order.*', payload: {} }] };
      const receipt = await client.publish({ eventType: 'test.js.bad', payload });
      await waitUntil(() => dlq.messages.length === 1, 5000, 'dead letter');
      const m = dlq.messages[0]!;
      expect(header(m, 'stufio-dlq-reason')).toBe('invalid_event_type');
      expect(header(m, 'stufio-dlq-attempts')).toBe('1');
      expect(header(m, 'stufio-dlq-error')).toContain('wildcard');
      expect(header(m, 'ce-id')).toBe(receipt.eventId);
      expect(json(m)).toEqual(payload);
      await new Promise((r) => setTimeout(r, 300));
      expect(callsFor(receipt.eventId)).toHaveLength(1);
      // Stored, since a stream captures events.dlq.>.
      const stored = await jsm.streams.getMessage('EVENTS', { last_by_subj: 'events.dlq.test.js.bad' });
      expect(stored?.header.get('stufio-dlq-reason')).toBe('invalid_event_type');
      dlq.stop();
    });

    it.each([
      ['event type with a space', { publish: [{ event_type: 'order created' }] }, 'invalid_event_type'],
      ['empty token', { publish: [{ event_type: 'order..created' }] }, 'invalid_event_type'],
      ['not in publish.allow', { publish: [{ event_type: 'payments.charged' }] }, 'event_type_not_allowed'],
      ['too many follow-ups', { publish: Array.from({ length: 6 }, () => ({ event_type: 'followup.many' })) }, 'too_many_followups'],
      ['payload over max_payload_bytes', { publish: [{ event_type: 'followup.big', payload: 'x'.repeat(5000) }] }, 'payload_too_large'],
      ['permanent gRPC error', { fail_code: 3 }, 'grpc_invalid_argument'],
      ['handler asks for a dead letter', { disposition: 'dead_letter' }, 'handler_dead_letter'],
      ['retryable error past max_deliver', { fail_code: 14 }, 'max_deliver'],
    ])('dead-letters: %s', async (_name, payload, reason) => {
      const type = `test.js.dl-${reason.replace(/_/g, '-')}`;
      const dlq = collect(nc, `events.dlq.${type}`);
      const receipt = await client.publish({ eventType: type, payload });
      await waitUntil(() => dlq.messages.length === 1, 10_000, 'dead letter');
      expect(header(dlq.messages[0]!, 'stufio-dlq-reason')).toBe(reason);
      expect(header(dlq.messages[0]!, 'ce-id')).toBe(receipt.eventId);
      expect(callsFor(receipt.eventId).length).toBe(reason === 'max_deliver' ? 3 : 1);
      dlq.stop();
    });

    it('stops an event chain at max_hops and dead-letters the event that would exceed it', async () => {
      const dlq = collect(nc, 'events.dlq.test.js.loop');
      const receipt = await client.publish({ eventType: 'test.js.loop', payload: { republish_self: true } });
      await waitUntil(() => dlq.messages.length === 1, 10_000, 'hop-limit dead letter');
      expect(header(dlq.messages[0]!, 'stufio-dlq-reason')).toBe('hop_limit');
      expect(header(dlq.messages[0]!, 'ce-hops')).toBe('3');
      expect(handler.calls.filter((c) => c.event_type === 'test.js.loop').map((c) => c.hops)).toEqual([0, 1, 2, 3]);
      expect(receipt.eventId).toBeTruthy();
      dlq.stop();
    });

    it('dead-letters a malformed structured event', async () => {
      const dlq = collect(nc, 'events.dlq.test.js.malformed');
      const h = natsHeaders();
      h.set('content-type', 'application/cloudevents+json');
      nc.publish('events.test.js.malformed', '{not json', { headers: h });
      await waitUntil(() => dlq.messages.length === 1, 5000, 'dead letter');
      expect(header(dlq.messages[0]!, 'stufio-dlq-reason')).toBe('malformed_event');
      expect(Buffer.from(dlq.messages[0]!.data).toString()).toBe('{not json');
      dlq.stop();
    });
  });

  describe('core delivery', () => {
    it('answers a plain NATS request with the result and publishes the follow-ups', async () => {
      const followups = collect(nc, 'events.followup.core');
      const body = JSON.stringify({ result: { ok: true }, publish: [{ event_type: 'followup.core', payload: { from: 'core' } }] });
      const h = natsHeaders();
      h.set('ce-specversion', '1.0');
      h.set('ce-id', 'core-1');
      h.set('ce-type', 'test.core.echo');
      h.set('ce-correlationid', 'corr-core');
      h.set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
      const reply = await nc.request('events.test.core.echo', body, { headers: h, timeout: 5000 });
      expect(json(reply)).toEqual({ ok: true });
      expect(header(reply, 'ce-causationid')).toBe('core-1');
      expect(header(reply, 'Nats-Service-Error')).toBeUndefined();
      await waitUntil(() => followups.messages.length === 1, 5000, 'follow-up');
      const f = followups.messages[0]!;
      expect(header(f, 'ce-correlationid')).toBe('corr-core');
      expect(header(f, 'ce-causationid')).toBe('core-1');
      expect(header(f, 'traceparent')).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
      expect(callsFor('core-1')[0]).toMatchObject({ mode: 'core', attempt: 1 });
      followups.stop();
    });

    it('replies with Nats-Service-Error for a failed call, and counts it', async () => {
      const reply = await nc.request('events.test.core.fail', JSON.stringify({ fail_code: 3 }), { timeout: 5000 });
      expect(header(reply, 'Nats-Service-Error-Code')).toBe('400');
      expect(header(reply, 'Nats-Service-Error')).toContain('instructed failure');
      const retryable = await nc.request('events.test.core.fail', JSON.stringify({ fail_code: 14 }), { timeout: 5000 });
      expect(header(retryable, 'Nats-Service-Error-Code')).toBe('503');
      expect(await metricsText()).toMatch(/stufio_events_processed_total\{event_type="test.core.fail",outcome="rejected"\} 2/);
    });

    it('uses EventClient.request over plain request/reply when no stream stores the subject', async () => {
      const reply = await client.request({ eventType: 'test.core.client', payload: { result: [1, 2, 3] } }, 5000);
      expect(reply.via).toBe('core');
      expect(reply.result).toEqual([1, 2, 3]);
    });
  });

  describe('health and metrics endpoints', () => {
    it('reports ready and exposes the transport counters and the handler histogram', async () => {
      const base = `http://127.0.0.1:${car.httpAddress!.port}`;
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const text = await metricsText();
      expect(text).toMatch(/stufio_events_received_total\{event_type="order.created",delivery="jetstream"\} \d+/);
      expect(text).toMatch(/stufio_handler_duration_seconds_bucket\{le="[0-9.]+",event_type="order.created"\}/);
      expect(text).toMatch(/stufio_followups_published_total\{event_type="order.created"\} 2/);
      expect(text).toMatch(/stufio_nats_connected 1/);
      expect(text).toMatch(/stufio_handler_serving 1/);
      expect(text).toMatch(/stufio_events_in_flight 0/);
      // Payload data never reaches the endpoint.
      expect(text).not.toContain('7 Elm St');
    });
  });
});
