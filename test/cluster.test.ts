/**
 * Scale-out as deployed (DESIGN.md §8): a 3-node NATS cluster with replicated streams, two sidecar
 * replicas sharing one durable consumer. The work is shared, and killing a NATS node mid-load loses nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import type { Sidecar } from '../src/sidecar.js';
import { cleanup, handlerProcess, manager, natsClient, natsCluster, publishDurably, sidecar, sidecarConfig, waitUntil } from './helpers/index.js';

afterAll(cleanup);

describe('NATS cluster with two sidecar replicas', () => {
  it('shares the work through one durable and survives a NATS node killed and restarted mid-load', { timeout: 120_000 }, async () => {
    const cluster = await natsCluster(3);
    const handler = await handlerProcess();
    const config = sidecarConfig(cluster.urls, handler.address, {
      streams: [
        { name: 'IN', subjects: ['events.test.js.>'], replicas: 3 },
        { name: 'OUT', subjects: ['events.out.>', 'events.dlq.>'], replicas: 3 },
      ],
      subscriptions: [{ event_type: 'test.js.>', delivery: 'jetstream', durable: 'shared', max_in_flight: 8, backoff_ms: [100], max_deliver: 100, ack_wait_ms: 3000 }],
    });
    const replicas: Sidecar[] = [await sidecar(config), await sidecar(config)];
    const handledBy = [0, 0];
    replicas.forEach((r, i) => r.on('handled', (h) => void (h.action.kind === 'ack' && handledBy[i]!++)));

    const nc = await natsClient(cluster.urls);
    const js = jetstream(nc);
    const jsm = await manager(nc);
    const N = 300;
    for (let i = 0; i < N; i++) {
      if (i === 100) {
        await cluster.servers[0]!.kill('SIGKILL');
        setTimeout(() => void cluster.servers[0]!.restart(), 2000);
      }
      await publishDurably(js, 'events.test.js.cluster', JSON.stringify({ sleep_ms: 2, publish: [{ event_type: `out.${i}`, payload: { i } }] }), `cluster-${i}`);
    }
    await waitUntil(async () => (await jsm.streams.info('OUT')).state.messages >= N, 90_000, `${N} follow-ups stored`);
    await waitUntil(async () => {
      const c = await jsm.consumers.info('IN', 'shared');
      return c.num_pending === 0 && c.num_ack_pending === 0;
    }, 30_000, 'consumer drained');
    expect((await jsm.streams.info('OUT')).state.messages).toBe(N);
    expect(new Set(handler.calls.filter((c) => c.event_type === 'test.js.cluster').map((c) => c.event_id)).size).toBe(N);
    // Both replicas took part.
    expect(handledBy[0]).toBeGreaterThan(0);
    expect(handledBy[1]).toBeGreaterThan(0);
    expect(handledBy[0]! + handledBy[1]!).toBeGreaterThanOrEqual(N);
  });
});
