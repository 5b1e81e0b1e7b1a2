/** `ordering: entity`: events of one entity are handled one at a time, in arrival order; others overlap. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { cleanup, collect, handlerProcess, natsClient, natsServer, sidecar, sidecarConfig, waitUntil } from './helpers/index.js';

let nc: NatsConnection;

beforeAll(async () => {
  const server = await natsServer();
  nc = await natsClient(server.url);
  const handler = await handlerProcess();
  await sidecar(
    sidecarConfig(server.url, handler.address, {
      streams: [{ name: 'EVENTS', subjects: ['events.>'], storage: 'memory' }],
      subscriptions: [
        { event_type: 'test.js.ordered', delivery: 'jetstream', durable: 'ordered', ordering: 'entity', max_in_flight: 16 },
        { event_type: 'test.js.unordered', delivery: 'jetstream', durable: 'unordered', ordering: 'none', max_in_flight: 16 },
      ],
    }),
  );
});

afterAll(cleanup);

describe('ordering', () => {
  it('handles events of one entity in order with ordering: entity, and lets other entities overlap', async () => {
    const js = jetstream(nc);
    const out = collect(nc, 'events.out.>');
    const publish = async (type: string, entity: string, n: number, sleep: number) => {
      const h = natsHeaders();
      h.set('ce-specversion', '1.0');
      h.set('ce-id', `${type}-${entity}-${n}`);
      h.set('ce-subject', entity);
      h.set('content-type', 'application/json');
      await js.publish(`events.${type}`, JSON.stringify({ sleep_ms: sleep, publish: [{ event_type: `out.${type.split('.').at(-1)}.${entity}`, payload: { n } }] }), { headers: h });
    };
    for (const type of ['test.js.ordered', 'test.js.unordered']) {
      await publish(type, 'a', 1, 400);
      await publish(type, 'a', 2, 0);
      await publish(type, 'b', 1, 0);
    }
    await waitUntil(() => out.messages.length === 6, 10_000, 'six follow-ups');
    const seen = (prefix: string) =>
      out.messages
        .filter((m) => m.subject.startsWith(prefix))
        .map((m) => `${m.subject.split('.').at(-1)}${(JSON.parse(Buffer.from(m.data).toString()) as { n: number }).n}`);
    // Ordered: a1 (slow) before a2; b1 did not wait for entity a.
    const ordered = seen('events.out.ordered.');
    expect(ordered.indexOf('a1')).toBeLessThan(ordered.indexOf('a2'));
    expect(ordered.indexOf('b1')).toBeLessThan(ordered.indexOf('a1'));
    // Unordered: the fast a2 overtook the slow a1.
    const unordered = seen('events.out.unordered.');
    expect(unordered.indexOf('a2')).toBeLessThan(unordered.indexOf('a1'));
    out.stop();
  });
});

