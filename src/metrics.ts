/**
 * Prometheus metrics (DESIGN.md §6): the sidecar's transport metrics and the handler-returned ones, in one
 * registry per sidecar. Handler metrics are created on first sight and bounded: a handler returning a new
 * name or string on every event cannot grow memory or /metrics without limit.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from './outcome.js';

export interface MetricsOptions {
  maxHandlerMetricNames: number;
  maxLabelValues: number;
  /** Distinct event_type label values kept before the rest become __other__. */
  maxEventTypes?: number;
  /** Histogram buckets for handler-returned numbers, per metric name (sanitised); `default` for the rest. */
  buckets?: Readonly<Record<string, readonly number[]>>;
  /** Node process metrics (CPU, memory, event loop) under the same registry. */
  processMetrics?: boolean;
}

export const OTHER = '__other__';
const DEFAULT_HANDLER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 100_000, 1_000_000];
const MAX_LABEL_LENGTH = 128;

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly received: Counter<'event_type' | 'delivery'>;
  readonly processed: Counter<'event_type' | 'outcome'>;
  readonly handlerDuration: Histogram<'event_type'>;
  readonly eventAge: Histogram<'event_type'>;
  readonly followUps: Counter<'event_type'>;
  readonly inFlight: Gauge;
  readonly redeliveries: Counter;
  readonly natsConnected: Gauge;
  readonly natsReconnects: Counter;
  readonly handlerServing: Gauge;
  readonly handlerMetricsDropped: Counter<'reason'>;
  readonly deadLetters: Counter<'event_type' | 'reason'>;
  readonly shed: Counter<'event_type'>;

  readonly #options: Required<Omit<MetricsOptions, 'buckets' | 'processMetrics'>> & Pick<MetricsOptions, 'buckets'>;
  readonly #eventTypes = new Set<string>();
  readonly #handlerMetrics = new Map<string, HandlerMetric>();
  readonly #refused = new Set<string>();
  readonly #byType = new Map<string, EventTypeMetrics>();

  constructor(options: MetricsOptions) {
    this.#options = { maxEventTypes: 1000, ...options };
    const registers = [this.registry];
    this.received = new Counter({ name: 'stufio_events_received_total', help: 'Events received from NATS.', labelNames: ['event_type', 'delivery'], registers });
    this.processed = new Counter({
      name: 'stufio_events_processed_total',
      help: 'Events handled, by outcome (success, handler_failure, retry, dead_letter, rejected).',
      labelNames: ['event_type', 'outcome'],
      registers,
    });
    this.handlerDuration = new Histogram({
      name: 'stufio_handler_duration_seconds',
      help: 'Duration of the gRPC Handle call.',
      labelNames: ['event_type'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.eventAge = new Histogram({
      name: 'stufio_event_age_seconds',
      help: 'Age of an event when its handling starts (now minus the event time).',
      labelNames: ['event_type'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.followUps = new Counter({ name: 'stufio_followups_published_total', help: 'Follow-up events published on behalf of the handler.', labelNames: ['event_type'], registers });
    this.inFlight = new Gauge({ name: 'stufio_events_in_flight', help: 'Events received and not yet settled.', registers });
    this.redeliveries = new Counter({ name: 'stufio_redeliveries_total', help: 'JetStream deliveries with attempt > 1.', registers });
    this.natsConnected = new Gauge({ name: 'stufio_nats_connected', help: '1 while connected to NATS.', registers });
    this.natsReconnects = new Counter({ name: 'stufio_nats_reconnects_total', help: 'Reconnections to NATS.', registers });
    this.handlerServing = new Gauge({ name: 'stufio_handler_serving', help: '1 while the handler reports SERVING.', registers });
    this.handlerMetricsDropped = new Counter({
      name: 'stufio_handler_metrics_dropped_total',
      help: 'Handler metric values dropped (too many names, clashing names, unsupported types).',
      labelNames: ['reason'],
      registers,
    });
    this.shed = new Counter({
      name: 'stufio_events_shed_total',
      help: 'Core events refused unhandled because the subscription was overloaded (max_pending queued, every slot busy).',
      labelNames: ['event_type'],
      registers,
    });
    this.deadLetters = new Counter({ name: 'stufio_dead_letters_total', help: 'Events copied to the dead-letter subject.', labelNames: ['event_type', 'reason'], registers });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'stufio_process_' });
  }

  /** The event_type label for an event, bounded: wildcard subscriptions could otherwise see any type. */
  eventTypeLabel(eventType: string): string {
    if (this.#eventTypes.has(eventType)) return eventType;
    if (this.#eventTypes.size >= this.#options.maxEventTypes) return OTHER;
    this.#eventTypes.add(eventType);
    return eventType;
  }

  /**
   * The transport series of one event type, bound once: prom-client hashes a label set on every
   * `inc({...})`, which the hot path pays per event otherwise.
   */
  forEventType(eventType: string): EventTypeMetrics {
    const label = this.eventTypeLabel(eventType);
    let m = this.#byType.get(label);
    if (!m) {
      const processed = {} as Record<Outcome, ReturnType<Counter<'event_type' | 'outcome'>['labels']>>;
      for (const outcome of OUTCOMES) processed[outcome] = this.processed.labels(label, outcome);
      m = {
        label,
        receivedCore: this.received.labels(label, 'core'),
        receivedJetStream: this.received.labels(label, 'jetstream'),
        processed,
        handlerDuration: this.handlerDuration.labels(label),
        eventAge: this.eventAge.labels(label),
        followUps: this.followUps.labels(label),
      };
      this.#byType.set(label, m);
    }
    return m;
  }

  countProcessed(eventType: string, outcome: Outcome): void {
    this.forEventType(eventType).processed[outcome].inc();
  }

  /** Folds one HandlerResponse.metrics.values map into Prometheus. */
  observeHandlerMetrics(eventType: string, values: Readonly<Record<string, unknown>> | undefined): void {
    if (!values) return;
    for (const rawName in values) {
      const value = values[rawName];
      let kind: HandlerMetric['kind'];
      if (typeof value === 'number') kind = 'number';
      else if (typeof value === 'boolean' || typeof value === 'string') kind = 'label';
      else {
        this.handlerMetricsDropped.inc({ reason: 'unsupported_type' });
        continue;
      }
      const metric = this.#handlerMetric(sanitizeMetricName(rawName), kind);
      if (!metric) continue;
      if (metric.kind === 'number') {
        if (Number.isFinite(value)) metric.histogram.observe({ event_type: eventType }, value as number);
        else this.handlerMetricsDropped.inc({ reason: 'not_finite' });
      } else {
        metric.counter.inc({ event_type: eventType, value: metric.boundValue(String(value)) });
      }
    }
  }

  #handlerMetric(name: string, kind: HandlerMetric['kind']): HandlerMetric | undefined {
    const key = `${kind}:${name}`;
    const existing = this.#handlerMetrics.get(key);
    if (existing) return existing;
    if (this.#refused.has(key)) {
      this.handlerMetricsDropped.inc({ reason: 'name_clash' });
      return undefined;
    }
    if (this.#handlerMetrics.size >= this.#options.maxHandlerMetricNames) {
      this.handlerMetricsDropped.inc({ reason: 'too_many_names' });
      return undefined;
    }
    const fullName = kind === 'number' ? `stufio_handler_${name}` : `stufio_handler_${name}_total`;
    if (this.registry.getSingleMetric(fullName) || clashesWithTransport(fullName)) {
      // A handler metric named like one of ours (duration_seconds, …) must not replace it.
      if (this.#refused.size < this.#options.maxHandlerMetricNames) this.#refused.add(key);
      this.handlerMetricsDropped.inc({ reason: 'name_clash' });
      return undefined;
    }
    let metric: HandlerMetric;
    if (kind === 'number') {
      const buckets = this.#options.buckets?.[name] ?? this.#options.buckets?.default ?? DEFAULT_HANDLER_BUCKETS;
      metric = {
        kind,
        histogram: new Histogram({ name: fullName, help: `Handler-reported value "${name}".`, labelNames: ['event_type'], buckets: [...buckets], registers: [this.registry] }),
      };
    } else {
      const seen = new Set<string>();
      const max = this.#options.maxLabelValues;
      const dropped = this.handlerMetricsDropped;
      metric = {
        kind,
        counter: new Counter({ name: fullName, help: `Handler-reported value "${name}", by value.`, labelNames: ['event_type', 'value'], registers: [this.registry] }),
        boundValue(value: string): string {
          const v = value.length > MAX_LABEL_LENGTH ? value.slice(0, MAX_LABEL_LENGTH) : value;
          if (seen.has(v)) return v;
          if (seen.size >= max) {
            dropped.inc({ reason: 'too_many_values' });
            return OTHER;
          }
          seen.add(v);
          return v;
        },
      };
    }
    this.#handlerMetrics.set(key, metric);
    return metric;
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }
}

const OUTCOMES: readonly Outcome[] = ['success', 'handler_failure', 'retry', 'dead_letter', 'rejected'];

export interface EventTypeMetrics {
  label: string;
  receivedCore: { inc(): void };
  receivedJetStream: { inc(): void };
  processed: Record<Outcome, { inc(): void }>;
  handlerDuration: { observe(v: number): void };
  eventAge: { observe(v: number): void };
  followUps: { inc(n?: number): void };
}

type HandlerMetric =
  | { kind: 'number'; histogram: Histogram<'event_type'> }
  | { kind: 'label'; counter: Counter<'event_type' | 'value'>; boundValue(value: string): string };

/** Prometheus metric names: [a-zA-Z_][a-zA-Z0-9_]*, lower-cased, runs of other characters become one `_`. */
export function sanitizeMetricName(name: string): string {
  let out = name
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (out === '') out = 'unnamed';
  if (/^[0-9]/.test(out)) out = `_${out}`;
  return out.length > 100 ? out.slice(0, 100) : out;
}

function clashesWithTransport(fullName: string): boolean {
  return fullName === 'stufio_handler_duration_seconds' || fullName === 'stufio_handler_serving' || fullName.startsWith('stufio_handler_metrics_dropped');
}
