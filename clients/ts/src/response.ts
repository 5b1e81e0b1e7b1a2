import { Disposition, type HandlerResponse as PbHandlerResponse, type PublishEventInfo } from './gen/stufio/events/v1/handler.js';

export type MetricValues = Record<string, number | boolean | string>;

/** A follow-up event, spelled as in the seed; `eventType` may also be a class with a static `eventType`. */
export interface PublishEvent {
  eventType: string | { eventType: string } | { name: string };
  entityId?: string;
  payload?: unknown;
  data?: Uint8Array;
  contentType?: string;
  correlationId?: string;
  headers?: Record<string, string>;
  actor?: { type: string; id: string };
  delayMs?: number;
}

/** The seed's HandlerResponse: result, metrics and follow-up events. */
export class HandlerResponse {
  result: unknown = undefined;
  metrics: MetricValues = {};
  publish: PublishEvent[] = [];
  disposition: 'ack' | 'retry' | 'dead_letter' = 'ack';
  retryDelayMs = 0;
  errorMessage = '';

  constructor(init: Partial<Pick<HandlerResponse, 'result' | 'metrics' | 'publish'>> = {}) {
    if (init.result !== undefined) this.result = init.result;
    if (init.metrics) this.metrics = { ...init.metrics };
    if (init.publish) this.publish = [...init.publish];
  }

  static withResult(result: unknown): HandlerResponse {
    return new HandlerResponse({ result });
  }

  addMetrics(values: MetricValues): this {
    Object.assign(this.metrics, values);
    return this;
  }

  addPublish(event: PublishEvent): this {
    this.publish.push(event);
    return this;
  }

  /** Ask the sidecar to redeliver later instead of acking. */
  retry(delayMs = 0, reason = ''): this {
    this.disposition = 'retry';
    this.retryDelayMs = delayMs;
    this.errorMessage = reason;
    return this;
  }

  deadLetter(reason = ''): this {
    this.disposition = 'dead_letter';
    this.errorMessage = reason;
    return this;
  }

  toProto(eventId = ''): PbHandlerResponse {
    return {
      result: this.result,
      metrics: Object.keys(this.metrics).length > 0 ? { values: this.metrics } : undefined,
      publish: this.publish.map(toPublishEventInfo),
      disposition:
        this.disposition === 'retry' ? Disposition.DISPOSITION_RETRY : this.disposition === 'dead_letter' ? Disposition.DISPOSITION_DEAD_LETTER : Disposition.DISPOSITION_ACK,
      retryDelayMs: this.retryDelayMs,
      eventId,
      errorMessage: this.errorMessage,
      errorCode: 0,
    };
  }
}

export type HandlerReturn = HandlerResponse | Record<string, unknown> | unknown[] | string | number | boolean | null | undefined | void;

const LEGACY_KEYS = new Set(['result', 'metrics', 'publish']);

/**
 * The seed's legacy returns: `{metrics}`, `{result}`, `{publish: [...]}` (any mix of these keys and no
 * other), a HandlerResponse, nothing, or any other value, which is the result.
 */
export function normaliseReturn(value: HandlerReturn): HandlerResponse {
  if (value instanceof HandlerResponse) return value;
  if (value === undefined) return new HandlerResponse();
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length > 0 && keys.every((k) => LEGACY_KEYS.has(k))) {
      const o = value as { result?: unknown; metrics?: MetricValues; publish?: PublishEvent[] | Record<string, unknown>[] };
      return new HandlerResponse({ result: o.result, metrics: o.metrics, publish: (o.publish ?? []).map(legacyPublish) });
    }
  }
  return HandlerResponse.withResult(value);
}

function legacyPublish(p: PublishEvent | Record<string, unknown>): PublishEvent {
  const o = p as Record<string, unknown>;
  return {
    eventType: (o.eventType ?? o.event_type) as PublishEvent['eventType'],
    entityId: (o.entityId ?? o.entity_id) as string | undefined,
    payload: o.payload,
    data: o.data as Uint8Array | undefined,
    contentType: (o.contentType ?? o.content_type) as string | undefined,
    correlationId: (o.correlationId ?? o.correlation_id) as string | undefined,
    headers: o.headers as Record<string, string> | undefined,
    actor: o.actor as PublishEvent['actor'],
    delayMs: (o.delayMs ?? o.delay_ms) as number | undefined,
  };
}

export function eventTypeName(t: PublishEvent['eventType']): string {
  if (typeof t === 'string') return t;
  if (t && 'eventType' in t && typeof t.eventType === 'string') return t.eventType;
  if (t && 'name' in t && typeof t.name === 'string') return t.name;
  return String(t);
}

/** A PublishEvent as the wire message (a follow-up, or an event given to EventPublisher). */
export function toPublishEventInfo(p: PublishEvent): PublishEventInfo {
  return {
    eventType: eventTypeName(p.eventType),
    entityId: p.entityId ?? '',
    payload: p.data === undefined ? p.payload : undefined,
    data: p.data ? Buffer.from(p.data) : Buffer.alloc(0),
    contentType: p.contentType ?? '',
    correlationId: p.correlationId ?? '',
    headers: p.headers ?? {},
    actor: p.actor,
    delayMs: p.delayMs ?? 0,
  };
}
