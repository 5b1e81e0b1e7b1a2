import type { MetricValue } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { OTHER, SidecarMetrics, sanitizeMetricName, type MetricsOptions } from '../../src/metrics.js';

function make(options: Partial<MetricsOptions> = {}): SidecarMetrics {
  return new SidecarMetrics({ maxHandlerMetricNames: 100, maxLabelValues: 50, processMetrics: false, ...options });
}

/** prom-client sets metricName on histogram samples (_bucket, _sum, _count); its type does not declare it. */
type Sample = MetricValue<string> & { metricName?: string };

/** Every sample of a metric (histograms: _bucket, _sum and _count), empty when the metric does not exist. */
async function samples(m: SidecarMetrics, name: string): Promise<Sample[]> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) return [];
  return (await metric.get()).values as Sample[];
}

/** The value of one sample, matched by sample name and exact labels; undefined when absent. */
async function sample(m: SidecarMetrics, name: string, sampleName: string, labels: Record<string, string | number>): Promise<number | undefined> {
  const found = (await samples(m, name)).filter(
    (v) => (v.metricName ?? name) === sampleName && Object.keys(labels).length === Object.keys(v.labels).length && Object.entries(labels).every(([k, x]) => String(v.labels[k]) === String(x)),
  );
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

const dropped = (m: SidecarMetrics, reason: string) => sample(m, 'stufio_handler_metrics_dropped_total', 'stufio_handler_metrics_dropped_total', { reason });

/** Names of the handler-returned metric families in the registry. */
function handlerMetricNames(m: SidecarMetrics): string[] {
  const transport = new Set(['stufio_handler_duration_seconds', 'stufio_handler_serving', 'stufio_handler_metrics_dropped_total']);
  return m.registry
    .getMetricsAsArray()
    .map((x) => x.name)
    .filter((n) => n.startsWith('stufio_handler_') && !transport.has(n));
}

describe('SidecarMetrics: transport metrics', () => {
  it('registers the DESIGN.md §6 transport metrics in its own registry, without process metrics', async () => {
    const m = make();
    const names = m.registry.getMetricsAsArray().map((x) => x.name);
    for (const name of [
      'stufio_events_received_total',
      'stufio_events_processed_total',
      'stufio_handler_duration_seconds',
      'stufio_event_age_seconds',
      'stufio_followups_published_total',
      'stufio_events_in_flight',
      'stufio_redeliveries_total',
      'stufio_nats_connected',
      'stufio_nats_reconnects_total',
      'stufio_handler_serving',
      'stufio_handler_metrics_dropped_total',
    ]) {
      expect(names).toContain(name);
    }
    expect(names.some((n) => n.startsWith('stufio_process_'))).toBe(false);
    // Two sidecars in one process do not share (or clash in) a registry.
    const other = make();
    other.received.inc({ event_type: 'a', delivery: 'core' });
    expect(await sample(m, 'stufio_events_received_total', 'stufio_events_received_total', { event_type: 'a', delivery: 'core' })).toBeUndefined();
  });

  it('countProcessed counts per event type and outcome', async () => {
    const m = make();
    m.countProcessed('order.created', 'success');
    m.countProcessed('order.created', 'success');
    m.countProcessed('order.created', 'dead_letter');
    expect(await sample(m, 'stufio_events_processed_total', 'stufio_events_processed_total', { event_type: 'order.created', outcome: 'success' })).toBe(2);
    expect(await sample(m, 'stufio_events_processed_total', 'stufio_events_processed_total', { event_type: 'order.created', outcome: 'dead_letter' })).toBe(1);
  });

  it('eventTypeLabel bounds the event_type label values', () => {
    const m = make({ maxEventTypes: 2 });
    expect(m.eventTypeLabel('a')).toBe('a');
    expect(m.eventTypeLabel('b')).toBe('b');
    expect(m.eventTypeLabel('c')).toBe(OTHER);
    expect(m.eventTypeLabel('a')).toBe('a');
    expect(m.eventTypeLabel('d')).toBe(OTHER);
  });

  it('metricsText is the Prometheus exposition', async () => {
    const m = make();
    m.received.inc({ event_type: 'order.created', delivery: 'jetstream' });
    const text = await m.metricsText();
    expect(text).toContain('# TYPE stufio_events_received_total counter');
    expect(text).toContain('stufio_events_received_total{event_type="order.created",delivery="jetstream"} 1');
  });
});

describe('SidecarMetrics: handler-returned numbers', () => {
  it('a number → histogram stufio_handler_<name> with exact sum and count per event_type', async () => {
    const m = make();
    m.observeHandlerMetrics('order.created', { items_processed: 42 });
    m.observeHandlerMetrics('order.created', { items_processed: 8 });
    m.observeHandlerMetrics('order.created', { items_processed: 0.5 });
    m.observeHandlerMetrics('invoice.paid', { items_processed: 3 });

    const name = 'stufio_handler_items_processed';
    expect(m.registry.getSingleMetric(name)).toBeDefined();
    expect(await sample(m, name, `${name}_sum`, { event_type: 'order.created' })).toBe(50.5);
    expect(await sample(m, name, `${name}_count`, { event_type: 'order.created' })).toBe(3);
    expect(await sample(m, name, `${name}_sum`, { event_type: 'invoice.paid' })).toBe(3);
    expect(await sample(m, name, `${name}_count`, { event_type: 'invoice.paid' })).toBe(1);
    expect(await sample(m, name, `${name}_bucket`, { event_type: 'order.created', le: 1 })).toBe(1);
    expect(await sample(m, name, `${name}_bucket`, { event_type: 'order.created', le: 50 })).toBe(3);
    expect(await sample(m, name, `${name}_bucket`, { event_type: 'order.created', le: '+Inf' })).toBe(3);

    const text = await m.registry.getSingleMetricAsString(name);
    expect(text).toContain(`# TYPE ${name} histogram`);
    expect(text).toContain(`${name}_sum{event_type="order.created"} 50.5`);
    expect(text).toContain(`${name}_count{event_type="order.created"} 3`);
  });

  it('negative numbers and zero are observed', async () => {
    const m = make();
    m.observeHandlerMetrics('e', { delta: -2 });
    m.observeHandlerMetrics('e', { delta: 0 });
    expect(await sample(m, 'stufio_handler_delta', 'stufio_handler_delta_sum', { event_type: 'e' })).toBe(-2);
    expect(await sample(m, 'stufio_handler_delta', 'stufio_handler_delta_count', { event_type: 'e' })).toBe(2);
  });

  it('names are sanitised', async () => {
    const m = make();
    m.observeHandlerMetrics('e', { 'Items-Processed': 2, 'items processed': 3 });
    expect(await sample(m, 'stufio_handler_items_processed', 'stufio_handler_items_processed_count', { event_type: 'e' })).toBe(2);
  });

  it('custom buckets per metric name, and a default', async () => {
    const m = make({ buckets: { latency_ms: [10, 100], default: [1] } });
    m.observeHandlerMetrics('e', { latency_ms: 50, other: 0.5 });
    const les = (await samples(m, 'stufio_handler_latency_ms')).filter((v) => v.metricName?.endsWith('_bucket')).map((v) => String(v.labels.le));
    expect(les).toEqual(['10', '100', '+Inf']);
    const otherLes = (await samples(m, 'stufio_handler_other')).filter((v) => v.metricName?.endsWith('_bucket')).map((v) => String(v.labels.le));
    expect(otherLes).toEqual(['1', '+Inf']);
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('%s is dropped as not_finite', async (_name, value) => {
    const m = make();
    m.observeHandlerMetrics('e', { bad: value, good: 1 });
    expect(await dropped(m, 'not_finite')).toBe(1);
    expect(await sample(m, 'stufio_handler_bad', 'stufio_handler_bad_count', { event_type: 'e' })).toBeUndefined();
    expect(await sample(m, 'stufio_handler_good', 'stufio_handler_good_count', { event_type: 'e' })).toBe(1);
  });
});

describe('SidecarMetrics: handler-returned booleans and strings', () => {
  it('a boolean → counter stufio_handler_<name>_total{value="true|false"}', async () => {
    const m = make();
    m.observeHandlerMetrics('order.created', { success: true });
    m.observeHandlerMetrics('order.created', { success: true });
    m.observeHandlerMetrics('order.created', { success: false });
    m.observeHandlerMetrics('invoice.paid', { success: true });
    const name = 'stufio_handler_success_total';
    expect(await sample(m, name, name, { event_type: 'order.created', value: 'true' })).toBe(2);
    expect(await sample(m, name, name, { event_type: 'order.created', value: 'false' })).toBe(1);
    expect(await sample(m, name, name, { event_type: 'invoice.paid', value: 'true' })).toBe(1);
    const text = await m.registry.getSingleMetricAsString(name);
    expect(text).toContain(`# TYPE ${name} counter`);
    expect(text).toContain(`${name}{event_type="order.created",value="true"} 2`);
  });

  it('a string → counter stufio_handler_<name>_total{value=...}', async () => {
    const m = make();
    m.observeHandlerMetrics('e', { status: 'ok' });
    m.observeHandlerMetrics('e', { status: 'ok' });
    m.observeHandlerMetrics('e', { status: 'partial' });
    expect(await sample(m, 'stufio_handler_status_total', 'stufio_handler_status_total', { event_type: 'e', value: 'ok' })).toBe(2);
    expect(await sample(m, 'stufio_handler_status_total', 'stufio_handler_status_total', { event_type: 'e', value: 'partial' })).toBe(1);
  });

  it('long string values are truncated to 128 characters', async () => {
    const m = make();
    m.observeHandlerMetrics('e', { msg: 'x'.repeat(500) });
    expect(await sample(m, 'stufio_handler_msg_total', 'stufio_handler_msg_total', { event_type: 'e', value: 'x'.repeat(128) })).toBe(1);
  });

  it('past max_label_values, new values become __other__ and are counted as dropped too_many_values', async () => {
    const m = make({ maxLabelValues: 3 });
    for (let i = 0; i < 10; i++) m.observeHandlerMetrics('e', { reason: `r${i}` });
    m.observeHandlerMetrics('e', { reason: 'r0' }); // a known value keeps its own label
    const name = 'stufio_handler_reason_total';
    const values = (await samples(m, name)).map((v) => String(v.labels.value)).sort();
    expect(values).toEqual([OTHER, 'r0', 'r1', 'r2'].sort());
    expect(await sample(m, name, name, { event_type: 'e', value: 'r0' })).toBe(2);
    expect(await sample(m, name, name, { event_type: 'e', value: OTHER })).toBe(7);
    expect(await dropped(m, 'too_many_values')).toBe(7);
    expect(OTHER).toBe('__other__');
  });

  it('the value cap is per metric name', async () => {
    const m = make({ maxLabelValues: 1 });
    m.observeHandlerMetrics('e', { a: 'x', b: 'y' });
    m.observeHandlerMetrics('e', { a: 'z', b: 'y' });
    expect(await sample(m, 'stufio_handler_a_total', 'stufio_handler_a_total', { event_type: 'e', value: OTHER })).toBe(1);
    expect(await sample(m, 'stufio_handler_b_total', 'stufio_handler_b_total', { event_type: 'e', value: 'y' })).toBe(2);
    expect(await dropped(m, 'too_many_values')).toBe(1);
  });

  it('booleans count against the value cap like strings', async () => {
    const m = make({ maxLabelValues: 1 });
    m.observeHandlerMetrics('e', { flag: true });
    m.observeHandlerMetrics('e', { flag: false });
    expect(await sample(m, 'stufio_handler_flag_total', 'stufio_handler_flag_total', { event_type: 'e', value: OTHER })).toBe(1);
  });
});

describe('SidecarMetrics: unsupported values', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['an object', { a: 1 }],
    ['an array', [1, 2]],
    ['a bigint', 10n],
  ])('%s is dropped as unsupported_type and creates no metric', async (_name, value) => {
    const m = make();
    m.observeHandlerMetrics('e', { weird: value });
    expect(await dropped(m, 'unsupported_type')).toBe(1);
    expect(handlerMetricNames(m)).toEqual([]);
  });

  it('undefined or empty values do nothing', async () => {
    const m = make();
    m.observeHandlerMetrics('e', undefined);
    m.observeHandlerMetrics('e', {});
    expect(handlerMetricNames(m)).toEqual([]);
    expect(await samples(m, 'stufio_handler_metrics_dropped_total')).toEqual([]);
  });
});

describe('SidecarMetrics: names the handler must not take', () => {
  it('a handler metric named duration_seconds does not replace the transport histogram', async () => {
    const m = make();
    m.handlerDuration.observe({ event_type: 'e' }, 0.25);
    const before = m.registry.getSingleMetric('stufio_handler_duration_seconds');
    m.observeHandlerMetrics('e', { duration_seconds: 99 });
    m.observeHandlerMetrics('e', { duration_seconds: 98 });
    expect(m.registry.getSingleMetric('stufio_handler_duration_seconds')).toBe(before);
    expect(m.registry.getSingleMetric('stufio_handler_duration_seconds')).toBe(m.handlerDuration);
    expect(await sample(m, 'stufio_handler_duration_seconds', 'stufio_handler_duration_seconds_sum', { event_type: 'e' })).toBe(0.25);
    expect(await sample(m, 'stufio_handler_duration_seconds', 'stufio_handler_duration_seconds_count', { event_type: 'e' })).toBe(1);
    expect(await dropped(m, 'name_clash')).toBe(2);
  });

  it.each([
    ['serving', 1],
    ['Duration-Seconds', 1],
    ['metrics_dropped', 1],
    ['metrics_dropped', 'x'], // stufio_handler_metrics_dropped_total
  ])('%j (%j) clashes with a transport metric', async (name, value) => {
    const m = make();
    m.observeHandlerMetrics('e', { [name]: value });
    expect(await dropped(m, 'name_clash')).toBe(1);
    expect(handlerMetricNames(m)).toEqual([]);
  });

  it('a number and a string under names that meet at the same full name: the first wins', async () => {
    const m = make();
    m.observeHandlerMetrics('e', { retries_total: 1 }); // histogram stufio_handler_retries_total
    m.observeHandlerMetrics('e', { retries: 'many' }); // counter stufio_handler_retries_total: clash
    expect(await dropped(m, 'name_clash')).toBe(1);
    expect(await sample(m, 'stufio_handler_retries_total', 'stufio_handler_retries_total_count', { event_type: 'e' })).toBe(1);
    // the refusal is remembered
    m.observeHandlerMetrics('e', { retries: 'more' });
    expect(await dropped(m, 'name_clash')).toBe(2);
  });

  it('a number and a string with the same name live side by side', async () => {
    const m = make();
    m.observeHandlerMetrics('e', { items: 3 });
    m.observeHandlerMetrics('e', { items: 'three' });
    expect(handlerMetricNames(m).sort()).toEqual(['stufio_handler_items', 'stufio_handler_items_total']);
  });
});

describe('SidecarMetrics: the name cap', () => {
  it('past max_handler_metric_names, new names are dropped as too_many_names; known names keep working', async () => {
    const m = make({ maxHandlerMetricNames: 2 });
    m.observeHandlerMetrics('e', { a: 1, b: true, c: 3, d: 'x' });
    expect(handlerMetricNames(m).sort()).toEqual(['stufio_handler_a', 'stufio_handler_b_total']);
    expect(await dropped(m, 'too_many_names')).toBe(2);
    m.observeHandlerMetrics('e', { a: 2 });
    expect(await sample(m, 'stufio_handler_a', 'stufio_handler_a_count', { event_type: 'e' })).toBe(2);
  });

  it('10,000 random names: the series count stays bounded and the dropped counter is the excess', async () => {
    const cap = 100;
    const m = make({ maxHandlerMetricNames: cap });
    const familiesBefore = m.registry.getMetricsAsArray().length;
    const names = new Set<string>();
    while (names.size < 10_000) names.add(`m_${Math.random().toString(36).slice(2, 12)}`);
    let i = 0;
    for (const name of names) {
      const kind = i++ % 3;
      m.observeHandlerMetrics('order.created', { [name]: kind === 0 ? i : kind === 1 ? true : 'v' });
    }
    expect(handlerMetricNames(m)).toHaveLength(cap);
    expect(m.registry.getMetricsAsArray().length).toBe(familiesBefore + cap);
    expect(await dropped(m, 'too_many_names')).toBe(10_000 - cap);

    // Observing them all again adds no family and drops exactly the excess again.
    for (const name of names) m.observeHandlerMetrics('order.created', { [name]: 1 });
    expect(m.registry.getMetricsAsArray().length).toBeLessThanOrEqual(familiesBefore + cap);
    const text = await m.metricsText();
    const families = text.split('\n').filter((l) => l.startsWith('# TYPE stufio_handler_m_')).length;
    expect(families).toBe(cap);
  });
});

describe('sanitizeMetricName', () => {
  it.each([
    ['items_processed', 'items_processed'],
    ['Items-Processed', 'items_processed'],
    ['items processed', 'items_processed'],
    ['a.b.c', 'a_b_c'],
    ['a  --  b', 'a_b'],
    ['__private__', 'private'],
    ['-x-', 'x'],
    ['9lives', '_9lives'],
    ['123', '_123'],
    ['', 'unnamed'],
    ['!!!', 'unnamed'],
    ['café', 'caf'],
    ['ÄÖÜ', 'unnamed'],
    ['x'.repeat(150), 'x'.repeat(100)],
  ])('%j → %j', (raw, expected) => {
    expect(sanitizeMetricName(raw)).toBe(expected);
  });

  it('always produces a valid Prometheus name', () => {
    const inputs = ['', ' ', '0', 'a-b', '__', '1a', 'ÿ', 'a\nb', 'x'.repeat(300), '😀metric'];
    for (let i = 0; i < 200; i++) inputs.push(Math.random().toString(36) + String.fromCharCode(Math.floor(Math.random() * 0xffff)));
    for (const raw of inputs) {
      const name = sanitizeMetricName(raw);
      expect(name).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
      expect(name.length).toBeLessThanOrEqual(100);
    }
  });
});
