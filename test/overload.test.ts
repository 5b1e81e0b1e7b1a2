/** A core subscription under a flood sheds past max_pending instead of queueing without bound. */
import { afterAll, describe, expect, it } from 'vitest';
import type { Sidecar } from '../src/sidecar.js';
import { cleanup, handlerProcess, header, natsClient, natsServer, sidecar, sidecarConfig } from './helpers/index.js';

afterAll(cleanup);

describe('core overload', () => {
  it('answers every request — handled, or 503 overloaded at once — and counts what it shed', async () => {
    const server = await natsServer({ jetstream: false });
    const handler = await handlerProcess();
    const car: Sidecar = await sidecar(
      sidecarConfig(server.url, handler.address, {
        subscriptions: [{ event_type: 'test.core.>', delivery: 'core', max_in_flight: 2, max_pending: 5 }],
      }),
    );
    const nc = await natsClient(server.url);
    const N = 60;
    const replies = await Promise.all(
      Array.from({ length: N }, () => nc.request('events.test.core.slow', JSON.stringify({ sleep_ms: 100, result: 'done' }), { timeout: 20_000 })),
    );
    const shed = replies.filter((r) => header(r, 'Nats-Service-Error-Code') === '503');
    const handled = replies.filter((r) => header(r, 'Nats-Service-Error') === undefined);
    expect(shed.length + handled.length).toBe(N);
    expect(shed.length).toBeGreaterThan(0);
    expect(handled.length).toBeGreaterThanOrEqual(2);
    expect(header(shed[0]!, 'Nats-Service-Error')).toContain('overloaded');
    const text = await (await fetch(`http://127.0.0.1:${car.httpAddress!.port}/metrics`)).text();
    expect(text).toContain(`stufio_events_shed_total{event_type="test.core.slow"} ${shed.length}`);
    expect(text).toContain(`stufio_events_processed_total{event_type="test.core.slow",outcome="rejected"} ${shed.length}`);
    expect(car.state).toBe('running');
  });
});
