/**
 * Faults survived, each with counts: send N events, then check every one was handled at least once, no
 * follow-up was stored twice, and nothing is left pending. Real nats-server (file store), real handler
 * and sidecar processes, real kills.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  cleanup,
  collect,
  freePort,
  handlerProcess,
  header,
  manager,
  natsClient,
  natsServer,
  publishDurably,
  spawnCli,
  tempDir,
  waitUntil,
  writeTemp,
  type HandlerProcess,
} from './helpers/index.js';

afterEach(cleanup);

function config(natsUrl: string, handlerAddress: string, extra: { timeout_ms?: number; max_deliver?: number } = {}): string {
  return writeTemp(
    'sidecar.yaml',
    `nats:
  servers: [${natsUrl}]
  connect_timeout_ms: 20000
handler:
  address: ${handlerAddress}
  timeout_ms: ${extra.timeout_ms ?? 5000}
  health_interval_ms: 100
http:
  listen: 127.0.0.1:0
streams:
  - name: IN
    subjects: ["events.test.js.>"]
  - name: OUT
    subjects: ["events.out.>"]
  - name: DLQ
    subjects: ["events.dlq.>"]
subscriptions:
  - event_type: test.js.>
    delivery: jetstream
    durable: faults
    max_in_flight: 16
    max_deliver: ${extra.max_deliver ?? 100}
    backoff_ms: [100, 200, 400]
    ack_wait_ms: 3000
shutdown:
  grace_ms: 5000
`,
  );
}

/** Every event published produced exactly one stored follow-up, and the consumer has nothing left. */
async function expectAllHandledOnce(jsm: JetStreamManager, handler: HandlerProcess, n: number, type: string | RegExp): Promise<void> {
  await waitUntil(async () => (await jsm.streams.info('OUT')).state.messages >= n, 60_000, `${n} follow-ups stored`);
  await waitUntil(async () => {
    const c = await jsm.consumers.info('IN', 'faults');
    return c.num_pending === 0 && c.num_ack_pending === 0;
  }, 30_000, 'consumer drained');
  // Exactly n: a follow-up published again after a fault carried the same Nats-Msg-Id and was dropped.
  expect((await jsm.streams.info('OUT')).state.messages).toBe(n);
  const matches = (t: unknown) => (typeof type === 'string' ? t === type : type.test(String(t)));
  const handled = new Set(handler.calls.filter((c) => matches(c.event_type)).map((c) => c.event_id));
  expect(handled.size).toBe(n);
}

function eventBody(i: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ publish: [{ event_type: `out.${i}`, payload: { i } }], ...extra });
}

async function waitForRunning(run: { output(): string }): Promise<void> {
  await waitUntil(() => run.output().includes('"state":"running"'), 20_000, 'sidecar running');
}

describe('faults', () => {
  it('survives nats-server killed (SIGKILL) and restarted mid-load', async () => {
    const storeDir = tempDir();
    const server = await natsServer({ storeDir, port: await freePort() });
    const handler = await handlerProcess();
    const run = spawnCli(['run', '--config', config(server.url, handler.address)]);
    await waitForRunning(run);
    const nc = await natsClient(server.url);
    const js = jetstream(nc);
    const N = 300;
    let killed = false;
    for (let i = 0; i < N; i++) {
      if (i === 120) {
        await server.kill('SIGKILL');
        killed = true;
        setTimeout(() => void server.restart(), 1000);
      }
      await publishDurably(js, 'events.test.js.load', eventBody(i, { sleep_ms: 2 }), `nats-restart-${i}`);
    }
    expect(killed).toBe(true);
    await expectAllHandledOnce(await manager(nc), handler, N, 'test.js.load');
    expect(run.output()).toContain('nats reconnected');
  });

  it('survives the sidecar killed with SIGKILL mid-load and restarted', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const cfg = config(server.url, handler.address);
    const first = spawnCli(['run', '--config', cfg]);
    await waitForRunning(first);
    const nc = await natsClient(server.url);
    const js = jetstream(nc);
    const N = 200;
    for (let i = 0; i < N; i++) await js.publish('events.test.js.load', eventBody(i, { sleep_ms: 10 }), { msgID: `sidecar-kill-${i}` });
    await waitUntil(() => handler.calls.length >= 40, 20_000, 'some handled');
    first.child.kill('SIGKILL');
    await first.exited;
    expect(new Set(handler.calls.map((c) => c.event_id)).size).toBeLessThan(N);
    const second = spawnCli(['run', '--config', cfg]);
    await waitForRunning(second);
    await expectAllHandledOnce(await manager(nc), handler, N, 'test.js.load');
  });

  it('pauses while the handler is down or NOT_SERVING and resumes when it is back', async () => {
    const server = await natsServer();
    const port = await freePort();
    let handler = await handlerProcess({ address: `127.0.0.1:${port}` });
    const run = spawnCli(['run', '--config', config(server.url, `127.0.0.1:${port}`)]);
    await waitForRunning(run);
    const nc = await natsClient(server.url);
    const js = jetstream(nc);
    const jsm = await manager(nc);

    // NOT_SERVING: nothing is handled, nothing is dead-lettered, events wait.
    handler.child.kill('SIGUSR1');
    await waitUntil(() => run.output().includes('"status":"NOT_SERVING"'), 5000, 'sidecar saw NOT_SERVING');
    for (let i = 0; i < 20; i++) await js.publish('events.test.js.paused', eventBody(i), { msgID: `paused-${i}` });
    await new Promise((r) => setTimeout(r, 500));
    expect(handler.calls.filter((c) => c.event_type === 'test.js.paused')).toHaveLength(0);
    handler.child.kill('SIGUSR2');
    await waitUntil(async () => (await jsm.streams.info('OUT')).state.messages === 20, 10_000, 'resumed');

    // The handler process crashes mid-load and comes back on the same port.
    const calls = handler.calls;
    for (let i = 20; i < 220; i++) await js.publish('events.test.js.crash', eventBody(i, { sleep_ms: 5 }), { msgID: `crash-${i}` });
    await waitUntil(() => calls.filter((c) => c.event_type === 'test.js.crash').length >= 30, 10_000, 'some handled before the crash');
    await handler.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 700));
    handler = await handlerProcess({ address: `127.0.0.1:${port}` });
    handler.calls.unshift(...calls);
    await expectAllHandledOnce(jsm, handler, 220, /^test\.js\.(paused|crash)$/);
    const dead = (await jsm.streams.info('DLQ')).state.messages;
    expect(dead).toBe(0);
  });

  it('retries an event whose handler hangs past the deadline', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const run = spawnCli(['run', '--config', config(server.url, handler.address, { timeout_ms: 300 })]);
    await waitForRunning(run);
    const nc = await natsClient(server.url);
    const js = jetstream(nc);
    for (let i = 0; i < 10; i++) await js.publish('events.test.js.hang', eventBody(i, { sleep_ms: 1500, sleep_attempts: 1 }), { msgID: `hang-${i}` });
    await expectAllHandledOnce(await manager(nc), handler, 10, 'test.js.hang');
    const attempts = handler.calls.filter((c) => c.event_type === 'test.js.hang').map((c) => c.attempt as number);
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
  });

  it('dead-letters a poison event while the good ones flow', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const run = spawnCli(['run', '--config', config(server.url, handler.address, { max_deliver: 3 })]);
    await waitForRunning(run);
    const nc: NatsConnection = await natsClient(server.url);
    const js = jetstream(nc);
    const dlq = collect(nc, 'events.dlq.>');
    const N = 100;
    for (let i = 0; i < N; i++) {
      if (i === 10) await js.publish('events.test.js.poison', JSON.stringify({ fail_code: 13 }), { msgID: 'poison' });
      await js.publish('events.test.js.good', eventBody(i), { msgID: `good-${i}` });
    }
    const jsm = await manager(nc);
    await waitUntil(() => dlq.messages.length === 1, 10_000, 'poison dead-lettered');
    expect(header(dlq.messages[0]!, 'stufio-dlq-reason')).toBe('max_deliver');
    expect(header(dlq.messages[0]!, 'stufio-dlq-attempts')).toBe('3');
    await expectAllHandledOnce(jsm, handler, N, 'test.js.good');
    expect(handler.calls.filter((c) => c.event_type === 'test.js.poison')).toHaveLength(3);
    expect((await jsm.streams.info('DLQ')).state.messages).toBe(1);
  });

  it('does not let a backlog waiting behind a slow handler be redelivered (nothing handled twice, nothing dead-lettered)', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const cfg = writeTemp(
      'slow.yaml',
      `nats: { servers: [${server.url}] }
handler: { address: ${handler.address}, timeout_ms: 10000, health_interval_ms: 100 }
http: { listen: 127.0.0.1:0 }
streams:
  - { name: IN, subjects: ["events.test.js.>"] }
  - { name: OUT, subjects: ["events.out.>", "events.dlq.>"] }
subscriptions:
  - { event_type: test.js.>, delivery: jetstream, durable: slowpoke, max_in_flight: 4, ack_wait_ms: 1500, max_deliver: 2, backoff_ms: [100] }
`,
    );
    const run = spawnCli(['run', '--config', cfg]);
    await waitForRunning(run);
    const nc = await natsClient(server.url);
    const js = jetstream(nc);
    for (let i = 0; i < 10; i++) await js.publish('events.test.js.slow', eventBody(i, { sleep_ms: 2000 }), { msgID: `slow-${i}` });
    const jsm = await manager(nc);
    await waitUntil(async () => (await jsm.streams.info('OUT')).state.messages >= 10, 30_000, 'ten follow-ups');
    const calls = handler.calls.filter((c) => c.event_type === 'test.js.slow');
    expect(calls.map((c) => c.attempt)).toEqual(Array(10).fill(1));
    expect((await jsm.streams.info('OUT', { subjects_filter: 'events.dlq.>' })).state.subjects ?? {}).toEqual({});
  });
});
