/** The sidecar's EventPublisher gRPC service, called with the generated client as an application would. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import type { NatsConnection } from '@nats-io/nats-core';
import { EventPublisherClient, type PublishRequest, type PublishResponse, type RequestRequest, type RequestResponse } from '../src/gen/stufio/events/v1/handler.js';
import type { Sidecar } from '../src/sidecar.js';
import { cleanup, collect, handlerProcess, header, natsClient, natsServer, sidecar, sidecarConfig, tempDir, waitUntil } from './helpers/index.js';
import { publishInfo } from './fixtures/messages.js';

let nc: NatsConnection;
let car: Sidecar;
let client: EventPublisherClient;
let unixClient: EventPublisherClient;

beforeAll(async () => {
  const server = await natsServer();
  nc = await natsClient(server.url);
  const handler = await handlerProcess();
  const socket = join(tempDir(), 'publisher.sock');
  car = await sidecar(
    sidecarConfig(server.url, handler.address, {
      streams: [{ name: 'EVENTS', subjects: ['events.app.>', 'events.test.js.>'], storage: 'memory' }],
      subscriptions: [
        { event_type: 'test.js.>', delivery: 'jetstream', durable: 'pub-js' },
        { event_type: 'test.core.>', delivery: 'core' },
      ],
      publish: { allow: ['app.>', 'test.>'], max_payload_bytes: 1000 },
      publisher: { listen: '127.0.0.1:0' },
    }),
  );
  client = new EventPublisherClient(car.publisherAddress!, credentials.createInsecure());
  // A second sidecar on the same NATS, serving EventPublisher on a unix socket.
  const second = await sidecar(
    sidecarConfig(server.url, handler.address, {
      subscriptions: [{ event_type: 'test.unused', delivery: 'core' }],
      publisher: { listen: `unix://${socket}` },
    }),
  );
  expect(second.publisherAddress).toBe(`unix://${socket}`);
  unixClient = new EventPublisherClient(second.publisherAddress!, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  unixClient?.close();
  await cleanup();
});

const publish = (c: EventPublisherClient, req: Partial<PublishRequest>) =>
  new Promise<PublishResponse>((resolve, reject) => c.publish(req as PublishRequest, new Metadata(), { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res))));
const request = (req: Partial<RequestRequest>) =>
  new Promise<RequestResponse>((resolve, reject) => client.request(req as RequestRequest, new Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))));
const info = (eventType: string, payload: unknown, extra: Record<string, unknown> = {}) => publishInfo({ eventType, entityId: 'e-1', payload, ...extra });

describe('EventPublisher', () => {
  it('publishes a CloudEvent stored by the stream, and deduplicates a retried call with the same event_id', async () => {
    const seen = collect(nc, 'events.app.order.placed');
    const r = await publish(client, { event: info('app.order.placed', { n: 1 }, { correlationId: 'corr-app' }), eventId: 'app-1', causationId: 'cause-1' });
    expect(r).toMatchObject({ eventId: 'app-1', subject: 'events.app.order.placed', stream: 'EVENTS', duplicate: false });
    await waitUntil(() => seen.messages.length === 1, 5000, 'event seen');
    const m = seen.messages[0]!;
    expect(header(m, 'ce-id')).toBe('app-1');
    expect(header(m, 'ce-correlationid')).toBe('corr-app');
    expect(header(m, 'ce-causationid')).toBe('cause-1');
    expect(header(m, 'ce-subject')).toBe('e-1');
    const again = await publish(client, { event: info('app.order.placed', { n: 1 }), eventId: 'app-1' });
    expect(again.duplicate).toBe(true);
    seen.stop();
  });

  it.each([
    ['a wildcard event type', info('app.*', {}), status.INVALID_ARGUMENT],
    ['an event type outside publish.allow', info('billing.charged', {}), status.PERMISSION_DENIED],
    ['a payload over max_payload_bytes', info('app.big', 'x'.repeat(2000)), status.RESOURCE_EXHAUSTED],
    ['payload and data together', info('app.both', {}, { data: Buffer.from('x') }), status.INVALID_ARGUMENT],
    ['a reserved header', info('app.hdr', {}, { headers: { 'ce-id': 'forged' } }), status.INVALID_ARGUMENT],
    ['a header value with a line break', info('app.hdr', {}, { headers: { 'x-note': 'a\r\nInjected: 1' } }), status.INVALID_ARGUMENT],
  ])('refuses %s with a clear status', async (_name, event, code) => {
    await expect(publish(client, { event })).rejects.toMatchObject({ code } satisfies Partial<ServiceError>);
  });

  it('Request returns the handler result over core and over JetStream', async () => {
    const core = await request({ event: info('test.core.req', { result: { via: 'core' } }), timeoutMs: 5000 });
    expect(core.result).toEqual({ via: 'core' });
    expect(core.error).toBe('');
    const js = await request({ event: info('test.js.req', { result: { via: 'js' } }), timeoutMs: 5000 });
    expect(js.result).toEqual({ via: 'js' });
    const failed = await request({ event: info('test.core.req', { fail_code: 3 }), timeoutMs: 5000 });
    expect(failed.error).toContain('instructed failure');
    expect(failed.errorCode).toBe('400');
  });

  it('serves on a unix socket', async () => {
    const r = await publish(unixClient, { event: info('test.core.viaunix', {}) });
    expect(r.subject).toBe('events.test.core.viaunix');
  });
});
