/** `stufio-sidecar dlq list / replay` against dead letters a real sidecar produced. */
import { afterEach, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { join } from 'node:path';
import { cleanup, collect, handlerProcess, tempDir, manager, natsClient, natsServer, runCli, sidecar, sidecarConfig, waitUntil } from './helpers/index.js';

afterEach(cleanup);

describe('dlq command', () => {
  it('lists dead letters with their reasons and replays them once the handler is fixed', async () => {
    const server = await natsServer();
    // A unix socket, not a TCP port: the fixed handler must come back on the same address without racing
    // other processes for a freed port.
    const address = `unix://${join(tempDir(), 'handler.sock')}`;
    const broken = await handlerProcess({ address });
    await sidecar(
      sidecarConfig(server.url, address, {
        streams: [{ name: 'EVENTS', subjects: ['events.>'] }],
        subscriptions: [{ event_type: 'test.js.>', delivery: 'jetstream', durable: 'dlq-test' }],
      }),
    );
    const nc = await natsClient(server.url);
    const js = jetstream(nc);
    for (let i = 0; i < 3; i++) await js.publish('events.test.js.bad', JSON.stringify({ fail_code: 3, result: { i } }), { msgID: `bad-${i}` });
    await js.publish('events.test.js.other', JSON.stringify({ disposition: 'dead_letter' }), { msgID: 'other-0' });
    const jsm = await manager(nc);
    await waitUntil(async () => Object.keys((await jsm.streams.info('EVENTS', { subjects_filter: 'events.dlq.>' })).state.subjects ?? {}).length === 2, 5000, 'dead letters stored');

    const list = await runCli(['dlq', 'list', '--server', server.url]);
    expect(list.code).toBe(0);
    const entries = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; event_id: string; reason: string; event_type: string; original_subject: string; attempts: number });
    // Events are handled concurrently, so their dead letters are stored in any order.
    expect(entries.map((e) => [e.event_id, e.reason]).sort()).toEqual([
      ['bad-0', 'grpc_invalid_argument'],
      ['bad-1', 'grpc_invalid_argument'],
      ['bad-2', 'grpc_invalid_argument'],
      ['other-0', 'handler_dead_letter'],
    ]);
    expect(entries.find((e) => e.event_id === 'bad-0')).toMatchObject({ event_type: 'test.js.bad', original_subject: 'events.test.js.bad', attempts: 1 });
    const onlyOther = await runCli(['dlq', 'list', '--server', server.url, '--event-type', 'test.js.other']);
    expect(onlyOther.stdout.trim().split('\n')).toHaveLength(1);

    // Deploy the fixed handler on the same address, then replay the three "bad" dead letters.
    await broken.stop();
    const fixed = await handlerProcess({ address, env: { STUFIO_TEST_HANDLER_FIXED: '1' } });
    const results = collect(nc, 'events.test.js.bad');
    const replay = await runCli(['dlq', 'replay', '--all', '--event-type', 'test.js.bad', '--server', server.url]);
    expect(replay.stderr).toBe('');
    expect(replay.code).toBe(0);
    expect(replay.stdout.trim().split('\n')).toHaveLength(3);
    await waitUntil(() => fixed.calls.filter((c) => c.event_type === 'test.js.bad').length === 3, 10_000, 'replayed events handled');
    expect(fixed.calls.map((c) => c.event_id).sort()).toEqual(['bad-0', 'bad-1', 'bad-2']);
    expect(results.messages).toHaveLength(3);
    await waitUntil(async () => (await jsm.consumers.info('EVENTS', 'dlq-test')).num_ack_pending === 0, 5000, 'acked');
    // Replayed ones are removed from the dead letters; the other stays.
    const after = await runCli(['dlq', 'list', '--server', server.url]);
    expect(after.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event_id: string }).event_id)).toEqual(['other-0']);
  });

  it('says clearly when no stream keeps dead letters', async () => {
    const server = await natsServer();
    const r = await runCli(['dlq', 'list', '--server', server.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no stream stores events.dlq.>');
  });

  it('creates STUFIO_DLQ when no stream stores dead letters, so a dead letter is never terminated unstored', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    await sidecar(
      sidecarConfig(server.url, handler.address, {
        streams: [{ name: 'ONLYIN', subjects: ['events.test.js.>'] }],
        subscriptions: [{ event_type: 'test.js.>', delivery: 'jetstream', durable: 'dlq-create' }],
      }),
    );
    const nc = await natsClient(server.url);
    const jsm = await manager(nc);
    const info = await jsm.streams.info('STUFIO_DLQ');
    expect(info.config.subjects).toEqual(['events.dlq.>']);
    await jetstream(nc).publish('events.test.js.doomed', JSON.stringify({ fail_code: 3 }), { msgID: 'doomed-1' });
    await waitUntil(async () => (await jsm.streams.info('STUFIO_DLQ')).state.messages === 1, 5000, 'dead letter stored in STUFIO_DLQ');
    const stored = await jsm.streams.getMessage('STUFIO_DLQ', { last_by_subj: 'events.dlq.test.js.doomed' });
    expect(stored?.header.get('stufio-dlq-reason')).toBe('grpc_invalid_argument');
  });
});
