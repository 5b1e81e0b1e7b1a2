/**
 * The stufio-sidecar command as a user runs it: the built CLI in its own process, against a real
 * nats-server and handler process.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { cleanup, collect, handlerProcess, header, manager, natsClient, natsServer, runCli, spawnCli, tempDir, waitUntil, writeTemp } from './helpers/index.js';

afterEach(cleanup);

describe('check', () => {
  it('prints the resolved configuration with secrets redacted and exits 0', async () => {
    const file = writeTemp('ok.yaml', 'nats:\n  token: s3cret-token\nsubscriptions:\n  - event_type: order.created\n    durable: orders\n');
    const r = await runCli(['check', '--config', file]);
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.stdout) as { nats: { token: string }; subscriptions: { max_in_flight: number }[] };
    expect(printed.nats.token).toBe('[redacted]');
    expect(printed.subscriptions[0]!.max_in_flight).toBe(64);
    expect(r.stdout + r.stderr).not.toContain('s3cret-token');
  });

  it.each([
    ['a jetstream subscription without durable', 'subscriptions:\n  - event_type: order.created\n', 'subscriptions[0].durable: required for jetstream'],
    ['an unknown field', 'subscriptions:\n  - event_type: a.b\n    durable: d\n    max_infligt: 3\n', 'subscriptions[0]: unknown field max_infligt'],
    ['a wrong type', 'handler:\n  timeout_ms: soon\nsubscriptions:\n  - event_type: a.b\n    durable: d\n', 'handler.timeout_ms: expected number'],
    ['a bad event type', 'subscriptions:\n  - event_type: "order..created"\n    durable: d\n', 'subscriptions[0].event_type: empty token'],
    ['no subscriptions', '{}', 'subscriptions: at least one subscription is required'],
    ['YAML that does not parse', 'subscriptions: [', 'not valid YAML or JSON'],
  ])('exits 2 naming the field for %s', async (_name, text, expected) => {
    const r = await runCli(['check', '--config', writeTemp('bad.yaml', text)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(expected);
    expect(r.stdout).toBe('');
  });

  it('names the environment variable that set a bad value', async () => {
    const file = writeTemp('ok.yaml', 'subscriptions:\n  - event_type: a.b\n    durable: d\n');
    const r = await runCli(['check', '--config', file], { STUFIO_HANDLER_TIMEOUT_MS: 'abc' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('handler.timeout_ms (from STUFIO_HANDLER_TIMEOUT_MS)');
  });

  it('run refuses an invalid configuration with exit 2 too', async () => {
    const r = await runCli(['run', '--config', writeTemp('bad.yaml', 'subscriptions:\n  - event_type: x\n    delivery: core\n    durable: d\n')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('subscriptions[0].durable: only for jetstream delivery');
  });

  it('rejects an unknown command with usage and exit 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command');
  });
});

function sidecarYaml(natsUrl: string, handlerAddress: string, extra = ''): string {
  return `nats:
  servers: [${natsUrl}]
handler:
  address: ${handlerAddress}
  health_interval_ms: 100
http:
  listen: 127.0.0.1:0
streams:
  - name: EVENTS
    subjects: ["events.order.>", "events.user.>", "events.test.js.>"]
subscriptions:
  - event_type: order.created
    delivery: jetstream
    durable: orders
    ack_wait_ms: 2000
  - event_type: test.js.>
    delivery: jetstream
    durable: tests
    max_in_flight: 4
    ack_wait_ms: 2000
  - event_type: test.core.>
    delivery: core
    queue_group: tests
shutdown:
  grace_ms: 10000
${extra}`;
}

describe('run, publish and request', () => {
  it('runs the order flow end to end through the CLI (JetStream and core), then drains on SIGTERM', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const run = spawnCli(['run', '--config', writeTemp('sidecar.yaml', sidecarYaml(server.url, handler.address))]);
    const nc = await natsClient(server.url);
    await waitUntil(async () => (await manager(nc).then((m) => m.consumers.info('EVENTS', 'tests').then(() => true, () => false))), 15_000, 'sidecar running');
    await waitUntil(() => run.output().includes('subscription started') && run.output().includes('"state":"running"'), 10_000, 'running');

    const fulfillment = collect(nc, 'events.order.fulfillment');
    const req = await runCli(['request', 'order.created', '{"user_id":"u-1","total":3,"items":[{"sku":"a","qty":1}]}', '--entity-id', 'cust-1', '--correlation-id', 'corr-cli', '--server', server.url]);
    expect(req.stderr).toBe('');
    expect(req.code).toBe(0);
    expect(JSON.parse(req.stdout)).toEqual({ order_id: 'ord-cust-1' });
    await waitUntil(() => fulfillment.messages.length === 1, 5000, 'follow-up');
    expect(header(fulfillment.messages[0]!, 'ce-correlationid')).toBe('corr-cli');

    const core = await runCli(['request', 'test.core.echo', '{"result":{"via":"core"}}', '--server', server.url]);
    expect(core.code).toBe(0);
    expect(JSON.parse(core.stdout)).toEqual({ via: 'core' });

    const failed = await runCli(['request', 'test.core.fail', '{"fail_code":3}', '--server', server.url]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('instructed failure');

    const pub = await runCli(['publish', 'order.created', '{"user_id":"u-2","total":1,"items":[]}', '--server', server.url, '--event-id', 'fixed-id-1']);
    expect(pub.code).toBe(0);
    expect(JSON.parse(pub.stdout)).toMatchObject({ event_id: 'fixed-id-1', subject: 'events.order.created', stream: 'EVENTS', duplicate: false });
    const again = await runCli(['publish', 'order.created', '{"user_id":"u-2","total":1,"items":[]}', '--server', server.url, '--event-id', 'fixed-id-1']);
    expect(JSON.parse(again.stdout)).toMatchObject({ duplicate: true });

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('"state":"stopped"');
  });

  it('loses no JetStream event when SIGTERM arrives with events in flight', async () => {
    const server = await natsServer();
    const handler = await handlerProcess();
    const nc = await natsClient(server.url);
    const js = jetstream(nc);
    const config = writeTemp('sidecar.yaml', sidecarYaml(server.url, handler.address));
    const first = spawnCli(['run', '--config', config]);
    await waitUntil(() => first.output().includes('"state":"running"'), 15_000, 'first sidecar running');

    const N = 40;
    for (let i = 0; i < N; i++) {
      await js.publish('events.test.js.slow', JSON.stringify({ sleep_ms: 150, publish: [{ event_type: 'user.done', payload: { i } }] }), { msgID: `slow-${i}` });
    }
    await waitUntil(() => handler.calls.length >= 6, 10_000, 'some events in flight');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const handledByFirst = new Set(handler.calls.map((c) => c.event_id));
    expect(handledByFirst.size).toBeLessThan(N);

    // A replacement sidecar picks up everything the first one did not settle.
    const second = spawnCli(['run', '--config', config]);
    const jsm = await manager(nc);
    await waitUntil(async () => (await jsm.streams.info('EVENTS', { subjects_filter: 'events.user.done' })).state.subjects?.['events.user.done'] === N, 30_000, `all ${N} follow-ups stored`);
    await waitUntil(async () => {
      const info = await jsm.consumers.info('EVENTS', 'tests');
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 10_000, 'consumer drained');
    const ids = new Set(handler.calls.filter((c) => c.event_type === 'test.js.slow').map((c) => c.event_id));
    expect(ids.size).toBe(N);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('publish exits 2 for an event type with a wildcard, before connecting', async () => {
    const r = await runCli(['publish', 'order.*', '{}', '--server', 'nats://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('wildcard');
  });
});

describe('demo', () => {
  it('runs nats-server, the example handler and the sidecar, and shows results, follow-ups and metrics', async () => {
    const r = await runCli(['demo', '--events', '3'], {}, 60_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 1; i <= 3; i++) {
      expect(r.stdout).toContain(`← result {"order_id":"ord-cust-${i}"}`);
      expect(r.stdout).toMatch(new RegExp(`follow-up order\\.fulfillment entity=ord-cust-${i} correlation=demo-corr-${i} causation=`));
      expect(r.stdout).toMatch(new RegExp(`follow-up user\\.notification entity=u-${i} correlation=demo-corr-${i}`));
    }
    expect(r.stdout).toContain('← result {"total_with_tax":120}');
    expect(r.stdout).toMatch(/stufio_events_processed_total\{event_type="order.created",outcome="success"\} 3/);
    expect(r.stdout).toMatch(/stufio_handler_order_total_sum\{event_type="order.created"\} /);
    expect(r.stdout).toContain('demo done: 3 orders handled, 7 follow-ups seen');
  });

  it('says in one line how to install nats-server when there is none', async () => {
    const r = await runCli(['demo'], { PATH: '/usr/bin:/bin', HOME: tempDir(), STUFIO_NATS_SERVER_BIN: '' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('nats-server not found: run `npm run bootstrap`');
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });
});
