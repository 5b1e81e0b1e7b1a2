/**
 * Per-event metrics records (DESIGN.md §6): one JSON object per handled event on `metrics.record_subject`,
 * with the columns of Stufio's `event_metrics` table so existing dashboards and ClickHouse sinks carry over.
 * A stream on that subject keeps them for a database sink. Records are best-effort (core publish): they
 * describe events, losing one loses no event. Schema: docs/metrics.md.
 */
import { Counter } from 'prom-client';
import type { HandledEvent } from './dispatcher.js';
import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import type { SidecarMetrics } from './metrics.js';
import type { MetricsProvider } from './metrics-providers.js';
import type { Publisher } from './publisher.js';

export interface MetricsRecord {
  event_id: string;
  correlation_id: string;
  event_type: string;
  consumer_name: string;
  source_type: 'consumer';
  started_at: string;
  completed_at: string;
  duration_ms: number;
  latency_ms: number;
  success: boolean;
  error_message: string;
  attempt: number;
  outcome: string;
  custom_metrics: Record<string, unknown>;
  [provider: string]: unknown;
}

export class MetricsRecorder {
  readonly #providerErrors: Counter<'provider'>;

  constructor(
    private readonly deps: { subject: string; providers: readonly MetricsProvider[]; publisher: Publisher | undefined; metrics: SidecarMetrics; logger: Logger },
  ) {
    this.#providerErrors = new Counter({
      name: 'stufio_metrics_provider_errors_total',
      help: 'Metrics provider collect() or reset() calls that threw; the event itself is unaffected.',
      labelNames: ['provider'],
      registers: [deps.metrics.registry],
    });
  }

  /** Called at the start of an event, inside its async context. */
  resetAll(): void {
    for (const p of this.deps.providers) {
      if (!p.reset) continue;
      try {
        p.reset();
      } catch (err) {
        this.#failed(p, err);
      }
    }
  }

  /** Builds the record (every provider isolated) and publishes it when a subject is configured. */
  async record(h: HandledEvent): Promise<MetricsRecord> {
    const completedAt = Date.now();
    const record: MetricsRecord = {
      event_id: h.event?.eventId ?? '',
      correlation_id: h.event?.correlationId ?? '',
      event_type: h.event?.eventType ?? '',
      consumer_name: h.inbound.consumer,
      source_type: 'consumer',
      started_at: new Date(h.startedAt).toISOString(),
      completed_at: new Date(completedAt).toISOString(),
      duration_ms: completedAt - h.startedAt,
      latency_ms: h.event?.time ? Math.max(0, h.startedAt - h.event.time.getTime()) : 0,
      success: h.outcome === 'success',
      error_message: h.action.kind === 'ack' ? errorFromMetrics(h) : h.action.error,
      attempt: h.inbound.attempt,
      outcome: h.outcome,
      custom_metrics: { ...(h.response?.metrics?.values ?? {}) },
    };
    for (const p of this.deps.providers) {
      try {
        record[p.name] = await p.collect(h);
      } catch (err) {
        this.#failed(p, err);
      }
    }
    if (this.deps.subject && this.deps.publisher) {
      this.deps.publisher.publishCore(this.deps.subject, Buffer.from(JSON.stringify(record)));
    }
    return record;
  }

  #failed(p: MetricsProvider, err: unknown): void {
    this.#providerErrors.inc({ provider: p.name });
    this.deps.logger.warn({ provider: p.name, err: errorMessage(err) }, 'metrics provider failed');
  }
}

/** The seed's failure pattern puts the error in the metrics: `{success: false, error: "..."}`. */
function errorFromMetrics(h: HandledEvent): string {
  const values = h.response?.metrics?.values;
  if (values?.success === false && typeof values.error === 'string') return values.error;
  return '';
}
