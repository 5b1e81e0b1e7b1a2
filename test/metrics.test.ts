/**
 * Handler metrics aggregated with the transport's, read over HTTP from a running sidecar that a real
 * handler process answers; bounded cardinality; per-event records with the providers' values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/nats-core';
import { EventClient } from '../src/event-client.js';
import { silentLogger } from '../src/logger.js';
import type { MetricsRecord } from '../src/metrics-records.js';
import type { Sidecar } from '../src/sidecar.js';
import { cleanup, collect, handlerProcess, json, natsClient, natsServer, sidecar, sidecarConfig, waitUntil } from './helpers/index.js';

let nc: NatsConnection;
let car: Sidecar;
let client: EventClient;
const MAX_NAMES = 20;
const MAX_VALUES = 10;

beforeAll(async () => {
  const server = await natsServer();
  nc = await natsClient(server.url);
  const handler = await handlerProcess();
  car = await sidecar(
    sidecarConfig(server.url, handler.address, {
      subscriptions: [
        { event_type: 'test.core.>', delivery: 'core', queue_group: 'metrics', max_in_flight: 256 },
        { event_type: 'test.js.>', delivery: 'jetstream', durable: 'metrics-js', max_deliver: 2, backoff_ms: [50], max_in_flight: 256 },
      ],
      streams: [{ name: 'EVENTS', subjects: ['events.test.js.>', 'events.dlq.>'], storage: 'memory' }],
      metrics: {
        record_subject: 'events.metrics',
        max_handler_metric_names: MAX_NAMES,
        max_label_values: MAX_VALUES,
        providers: ['test/fixtures/providers'],
        buckets: { latency_ms: [10, 100, 1000] },
      },
    }),
  );
  client = await EventClient.create(nc, { prefix: 'events', logger: silentLogger() });
});

afterAll(cleanup);

const scrape = async () => (await fetch(`http://127.0.0.1:${car.httpAddress!.port}/metrics`)).text();
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('handler metrics in Prometheus', () => {
  it('turns numbers into histograms, booleans and strings into counters, per event type', async () => {
    const sends = [
      { latency_ms: 5, items: 3, ok: true, status: 'paid' },
      { latency_ms: 50, items: 4, ok: true, status: 'paid' },
      { latency_ms: 500, items: 5, ok: false, status: 'refused' },
    ];
    for (const metrics of sends) {
      const r = await nc.request('events.test.core.known', JSON.stringify({ metrics }), { timeout: 5000 });
      expect(json(r)).toMatchObject({ attempt: 1 });
    }
    const text = await scrape();
    expect(value(text, 'stufio_handler_items_sum{event_type="test.core.known"}')).toBe(12);
    expect(value(text, 'stufio_handler_items_count{event_type="test.core.known"}')).toBe(3);
    // Per-metric buckets from the configuration.
    expect(value(text, 'stufio_handler_latency_ms_bucket{le="10",event_type="test.core.known"}')).toBe(1);
    expect(value(text, 'stufio_handler_latency_ms_bucket{le="100",event_type="test.core.known"}')).toBe(2);
    expect(value(text, 'stufio_handler_latency_ms_bucket{le="1000",event_type="test.core.known"}')).toBe(3);
    expect(value(text, 'stufio_handler_ok_total{event_type="test.core.known",value="true"}')).toBe(2);
    expect(value(text, 'stufio_handler_ok_total{event_type="test.core.known",value="false"}')).toBe(1);
    expect(value(text, 'stufio_handler_status_total{event_type="test.core.known",value="paid"}')).toBe(2);
    expect(value(text, 'stufio_handler_status_total{event_type="test.core.known",value="refused"}')).toBe(1);
    expect(value(text, 'stufio_events_processed_total{event_type="test.core.known",outcome="success"}')).toBe(3);
    expect(value(text, 'stufio_events_received_total{event_type="test.core.known",delivery="core"}')).toBe(3);
  });

  it("acks the seed's success:false pattern and counts it as handler_failure", async () => {
    const receipt = await client.publish({ eventType: 'test.js.caught', payload: { metrics: { success: false, error: 'db down' } } });
    await waitUntil(async () => value(await scrape(), 'stufio_events_processed_total{event_type="test.js.caught",outcome="handler_failure"}') === 1, 5000, 'handler_failure counted');
    const text = await scrape();
    expect(value(text, 'stufio_handler_success_total{event_type="test.js.caught",value="false"}')).toBe(1);
    expect(text).not.toMatch(/test\.js\.caught",outcome="(retry|dead_letter)"/);
    expect(receipt.stream).toBe('EVENTS');
  });

  it('stays bounded under 10,000 distinct metric names and string values', { timeout: 150_000 }, async () => {
    const N = 10_000;
    const handlerMetricNames = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('# TYPE stufio_handler_'))
        .map((l) => l.split(' ')[2]!)
        // stufio_handler_duration_seconds / _serving / _metrics_dropped_total are the sidecar's own.
        .filter((n) => !/^stufio_handler_(duration_seconds|serving|metrics_dropped_total)$/.test(n));
    const before = await scrape();
    const droppedNames0 = value(before, 'stufio_handler_metrics_dropped_total{reason="too_many_names"}') ?? 0;
    const namesBefore = handlerMetricNames(before).length;
    // Through JetStream: core NATS may drop messages from a flood on a busy machine, and every one must count.
    const js = (await import('@nats-io/jetstream')).jetstream(nc);
    for (let i = 0; i < N; i += 500) {
      await Promise.all(
        Array.from({ length: 500 }, (_, k) => js.publish('events.test.js.flood', JSON.stringify({ metrics: { [`random_${i + k}`]: i + k, error_text: `error number ${i + k}` } }))),
      );
    }
    await waitUntil(async () => value(await scrape(), 'stufio_events_processed_total{event_type="test.js.flood",outcome="success"}') === N, 120_000, 'flood handled');
    const text = await scrape();
    const names = handlerMetricNames(text);
    expect(names).toHaveLength(MAX_NAMES);
    // The free slots went to error_text and the first random_* names; every later random_* was dropped.
    const randomKept = MAX_NAMES - namesBefore - 1;
    expect(names.filter((n) => n.startsWith('stufio_handler_random_'))).toHaveLength(randomKept);
    expect(value(text, 'stufio_handler_metrics_dropped_total{reason="too_many_names"}')! - droppedNames0).toBe(N - randomKept);
    const errorSeries = text.split('\n').filter((l) => l.startsWith('stufio_handler_error_text_total{event_type="test.js.flood"'));
    expect(errorSeries.length).toBe(MAX_VALUES + 1);
    expect(value(text, 'stufio_handler_error_text_total{event_type="test.js.flood",value="__other__"}')).toBe(N - MAX_VALUES);
    expect(value(text, 'stufio_handler_metrics_dropped_total{reason="too_many_values"}')).toBe(N - MAX_VALUES);
    expect(text.length).toBeLessThan(200_000);
  });
});

describe('per-event records', () => {
  it('publishes one record per handled event with the event_metrics columns, the handler values and every provider', async () => {
    const records = collect(nc, 'events.metrics');
    await nc.request('events.test.core.recorded', JSON.stringify({ metrics: { items: 2, success: true } }), { timeout: 5000 });
    const receipt = await client.publish({ eventType: 'test.js.recorded', correlationId: 'corr-rec', payload: { fail_code: 14, fail_attempts: 1 } });
    await waitUntil(() => records.messages.length >= 3, 5000, 'three records (core, js retry, js success)');
    const all = records.messages.map((m) => json(m) as MetricsRecord);
    const core = all.find((r) => r.event_type === 'test.core.recorded')!;
    expect(core).toMatchObject({
      consumer_name: 'metrics',
      source_type: 'consumer',
      success: true,
      outcome: 'success',
      attempt: 1,
      error_message: '',
      custom_metrics: { items: 2, success: true },
      transport: { delivery: 'core', attempt: 1, redelivered: false },
      handler_call: { outcome: 'success', followups: 0 },
      order_audit: { event_type_length: 'test.core.recorded'.length, notes: 'reset' },
    });
    expect(core.process).toMatchObject({ rss_mb: expect.any(Number) });
    expect(Date.parse(core.completed_at)).toBeGreaterThanOrEqual(Date.parse(core.started_at));
    expect(core.duration_ms).toBeGreaterThanOrEqual(0);
    expect(core).not.toHaveProperty('broken');

    const js = all.filter((r) => r.event_id === receipt.eventId).sort((a, b) => a.attempt - b.attempt);
    expect(js.map((r) => [r.attempt, r.outcome, r.success])).toEqual([
      [1, 'retry', false],
      [2, 'success', true],
    ]);
    expect(js[0]).toMatchObject({ correlation_id: 'corr-rec', consumer_name: 'metrics-js', transport: { delivery: 'jetstream', stream: 'EVENTS' } });
    expect(js[0]!.error_message).toContain('instructed failure');
    expect(js[1]!.transport).toMatchObject({ redelivered: true });
    records.stop();
  });

  it('counts a throwing provider and handles the event anyway', async () => {
    const r = await nc.request('events.test.core.after-broken', JSON.stringify({ result: 'fine' }), { timeout: 5000 });
    expect(json(r)).toBe('fine');
    const text = await scrape();
    expect(value(text, 'stufio_metrics_provider_errors_total{provider="broken"}')).toBeGreaterThanOrEqual(1);
  });
});
