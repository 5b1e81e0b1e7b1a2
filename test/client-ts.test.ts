/**
 * @stufio/client (clients/ts): serve() called over real gRPC with the generated client — the seed's
 * legacy returns, error → status mapping, metrics providers with per-event state, on-demand JSON parsing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { BaseMetricsProvider, EventRouter, HandlerResponse, PermanentError, RetryableError, serve, type RunningServer } from '@stufio/client';
import { EventHandlerClient, EventMessage, HandlerResponse as PbResponse } from '../src/gen/stufio/events/v1/handler.js';

class CallsProvider extends BaseMetricsProvider<{ api_calls: number; ms: number }> {
  readonly providerName = 'calls';
  override initialState() {
    return { api_calls: 0, ms: 0 };
  }
  track(ms: number) {
    this.state.api_calls++;
    this.state.ms += ms;
  }
}
const calls = new CallsProvider();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const router = new EventRouter()
  .subscribe('legacy.metrics', () => ({ metrics: { items: 3 } }))
  .subscribe('legacy.result', () => ({ result: { ok: 1 } }))
  .subscribe('legacy.publish', () => ({ publish: [{ event_type: 'a.b', payload: { x: 1 }, entity_id: 'e1' }] }))
  .subscribe('legacy.plain', () => 'just a value')
  .subscribe('legacy.none', () => undefined)
  .subscribe('helpers', () => HandlerResponse.withResult({ r: true }).addMetrics({ success: true }).addPublish({ eventType: { eventType: 'class.named' }, payload: 1 }))
  .subscribe('fail.permanent', () => {
    throw new PermanentError('bad order');
  })
  .subscribe('fail.retryable', () => {
    throw new RetryableError('db down');
  })
  .subscribe('fail.bug', () => {
    throw new TypeError('undefined is not a function');
  })
  .subscribe('provider.>', async (event) => {
    const n = (event.payload as { n: number }).n;
    for (let i = 0; i < n; i++) {
      calls.track(10);
      await sleep(1);
    }
    return { metrics: { n } };
  })
  .subscribe('payload.echo', (event) => ({ result: event.payload }));

let server: RunningServer;
let client: EventHandlerClient;

beforeAll(async () => {
  server = await serve({ address: '127.0.0.1:0', handlers: router, metricsProviders: [calls] });
  client = new EventHandlerClient(server.address, credentials.createInsecure());
});

afterAll(async () => {
  client.close();
  await server.stop();
});

function event(eventType: string, payload?: unknown, raw?: { data: string; contentType: string }): EventMessage {
  return EventMessage.fromPartial({
    eventId: `id-${eventType}`,
    eventType,
    payload,
    data: raw ? Buffer.from(raw.data) : Buffer.alloc(0),
    contentType: raw?.contentType ?? '',
  });
}

const handle = (e: EventMessage) =>
  new Promise<PbResponse>((resolve, reject) => client.handle(e, new Metadata(), (err, r) => (err ? reject(err) : resolve(r))));

describe('@stufio/client serve()', () => {
  it.each([
    ['legacy.metrics', { metrics: { values: { items: 3, calls_api_calls: 0, calls_ms: 0 } }, result: undefined }],
    // The provider's (zero) values join every response.
    ['legacy.result', { result: { ok: 1 }, metrics: { values: { calls_api_calls: 0, calls_ms: 0 } } }],
    ['legacy.plain', { result: 'just a value' }],
    ['legacy.none', { result: undefined, publish: [] }],
  ])("normalises the seed's legacy return of %s", async (type, expected) => {
    expect(await handle(event(type))).toMatchObject(expected);
  });

  it('accepts snake_case legacy follow-ups and event types given as a class', async () => {
    expect((await handle(event('legacy.publish'))).publish[0]).toMatchObject({ eventType: 'a.b', entityId: 'e1', payload: { x: 1 } });
    const r = await handle(event('helpers'));
    expect(r).toMatchObject({ result: { r: true }, metrics: { values: { success: true } } });
    expect(r.publish[0]).toMatchObject({ eventType: 'class.named', payload: 1 });
  });

  it.each([
    ['fail.permanent', status.INVALID_ARGUMENT],
    ['fail.retryable', status.UNAVAILABLE],
    ['fail.bug', status.INTERNAL],
    ['no.handler.for.this', status.UNIMPLEMENTED],
  ])('maps a thrown error in %s to gRPC status %i', async (type, code) => {
    await expect(handle(event(type))).rejects.toMatchObject({ code });
  });

  it('merges metrics providers into the response, with state per event even when events interleave', async () => {
    const results = await Promise.all([3, 1, 5, 2].map((n) => handle(event(`provider.${n}`, { n }))));
    expect(results.map((r) => r.metrics?.values)).toEqual([
      { n: 3, calls_api_calls: 3, calls_ms: 30 },
      { n: 1, calls_api_calls: 1, calls_ms: 10 },
      { n: 5, calls_api_calls: 5, calls_ms: 50 },
      { n: 2, calls_api_calls: 2, calls_ms: 20 },
    ]);
  });

  it('parses a JSON body itself when the sidecar sent no payload (handler.decode_payload: false)', async () => {
    expect((await handle(event('payload.echo', undefined, { data: '{"a":[1,2]}', contentType: 'application/json' }))).result).toEqual({ a: [1, 2] });
    await expect(handle(event('payload.echo', undefined, { data: '{broken', contentType: 'application/json' }))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    // No content type (a plain `nats pub`): JSON when it parses, raw data otherwise.
    expect((await handle(event('payload.echo', undefined, { data: '{"plain":true}', contentType: '' }))).result).toEqual({ plain: true });
    expect((await handle(event('payload.echo', undefined, { data: 'not json', contentType: '' }))).result).toBeUndefined();
  });

  it('reports NOT_SERVING after setServing(false)', async () => {
    const { HealthClient } = await import('../src/gen/grpc/health/v1/health.js');
    const health = new HealthClient(server.address, credentials.createInsecure());
    const check = () => new Promise<number>((resolve, reject) => health.check({ service: '' }, (err, r) => (err ? reject(err) : resolve(r.status))));
    expect(await check()).toBe(1);
    server.setServing(false);
    expect(await check()).toBe(2);
    server.setServing(true);
    health.close();
  });
});
