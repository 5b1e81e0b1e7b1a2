/** Delayed follow-ups are stored at once and published when due, even across a sidecar crash. */
import { afterEach, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { cleanup, collect, handlerProcess, header, manager, natsClient, natsServer, spawnCli, waitUntil, writeTemp } from './helpers/index.js';

afterEach(cleanup);

function config(natsUrl: string, handlerAddress: string): string {
  return writeTemp(
    'sidecar.yaml',
    `nats: { servers: [${natsUrl}] }
handler: { address: ${handlerAddress}, health_interval_ms: 100 }
http: { listen: 127.0.0.1:0 }
streams:
  - { name: IN, subjects: ["events.test.js.>"] }
  - { name: OUT, subjects: ["events.later.>", "events.dlq.>"] }
subscriptions:
  - { event_type: test.js.>, delivery: jetstream, durable: delayed }
publish: { max_delay_ms: 60000 }
`,
  );
}

describe('delayed follow-ups', () => {
  it('holds a follow-up until its delay has passed, durably across a sidecar SIGKILL', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const cfg = config(server.url, handler.address);
    const first = spawnCli(['run', '--config', cfg]);
    await waitUntil(() => first.output().includes('"state":"running"'), 20_000, 'running');
    const nc = await natsClient(server.url);
    const later = collect(nc, 'events.later.>');
    const jsm = await manager(nc);
    const sentAt = Date.now();
    await jetstream(nc).publish('events.test.js.delay', JSON.stringify({ publish: [{ event_type: 'later.one', payload: { n: 1 }, delay_ms: 2500 }] }), { msgID: 'delay-1' });
    // Stored in the delay stream at once, and the inbound event acked.
    await waitUntil(async () => (await jsm.streams.info('STUFIO_DELAYED')).state.messages === 1, 5000, 'held');
    await waitUntil(async () => (await jsm.consumers.info('IN', 'delayed')).num_ack_pending === 0, 5000, 'inbound acked');
    expect(later.messages).toHaveLength(0);
    // The sidecar dies before the due time; a new one delivers it.
    first.child.kill('SIGKILL');
    await first.exited;
    const second = spawnCli(['run', '--config', cfg]);
    await waitUntil(() => later.messages.length === 1, 15_000, 'delivered after the delay');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(2400);
    const m = later.messages[0]!;
    expect(header(m, 'ce-type')).toBe('later.one');
    expect(header(m, 'ce-causationid')).toBe('delay-1');
    expect(header(m, 'stufio-due-at')).toBeUndefined();
    await waitUntil(async () => (await jsm.consumers.info('STUFIO_DELAYED', 'stufio-delayer')).num_ack_pending === 0, 5000, 'delay message acked');
    expect((await jsm.streams.info('OUT', { subjects_filter: 'events.later.one' })).state.subjects?.['events.later.one']).toBe(1);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('dead-letters a follow-up whose delay_ms exceeds publish.max_delay_ms', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const run = spawnCli(['run', '--config', config(server.url, handler.address)]);
    await waitUntil(() => run.output().includes('"state":"running"'), 20_000, 'running');
    const nc = await natsClient(server.url);
    const dlq = collect(nc, 'events.dlq.>');
    await jetstream(nc).publish('events.test.js.toolong', JSON.stringify({ publish: [{ event_type: 'later.two', delay_ms: 3_600_000 }] }), { msgID: 'delay-2' });
    await waitUntil(() => dlq.messages.length === 1, 5000, 'dead letter');
    expect(header(dlq.messages[0]!, 'stufio-dlq-reason')).toBe('invalid_delay');
  });
});
