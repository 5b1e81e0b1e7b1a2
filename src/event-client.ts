/**
 * Publishing and requesting from outside a handler (the CLI's `publish` and `request`, the EventPublisher
 * service): the same CloudEvents headers, ids and stream handling as follow-ups.
 */
import { createInbox, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { encodeNewEvent, REPLY_TO, type OutboundEvent } from './cloudevents.js';
import type { PublishEventInfo } from './gen/stufio/events/v1/handler.js';
import type { Logger } from './logger.js';
import { Publisher, type PublishReceipt } from './publisher.js';

export interface NewEvent {
  eventType: string;
  payload?: unknown;
  data?: Uint8Array;
  contentType?: string;
  entityId?: string;
  correlationId?: string;
  causationId?: string;
  eventId?: string;
  headers?: Record<string, string>;
  actor?: { type: string; id: string };
}

export interface RequestReply {
  eventId: string;
  /** The parsed result (JSON), when the handler succeeded. */
  result?: unknown;
  error?: string;
  errorCode?: string;
  headers: Record<string, string>;
  /** `core` when a plain NATS request answered, `jetstream` when a stufio-reply-to inbox did. */
  via: 'core' | 'jetstream';
}

export class EventClient {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly publisher: Publisher,
    private readonly options: { prefix: string; source: string },
  ) {}

  static async create(nc: NatsConnection, options: { prefix: string; source?: string; logger: Logger }): Promise<EventClient> {
    const js = nc.info?.jetstream ? jetstream(nc) : undefined;
    const jsm = nc.info?.jetstream ? await jetstreamManager(nc) : undefined;
    return new EventClient(nc, new Publisher(nc, js, jsm, { logger: options.logger }), { prefix: options.prefix, source: options.source ?? 'stufio-sidecar/cli' });
  }

  encode(e: NewEvent, replyTo?: string): OutboundEvent {
    const info: PublishEventInfo = {
      eventType: e.eventType,
      entityId: e.entityId ?? '',
      payload: e.data ? undefined : e.payload,
      data: e.data ? Buffer.from(e.data) : Buffer.alloc(0),
      contentType: e.contentType ?? '',
      correlationId: e.correlationId ?? '',
      headers: e.headers ?? {},
      actor: e.actor,
      delayMs: 0,
    };
    return encodeNewEvent(info, { prefix: this.options.prefix, source: this.options.source, id: e.eventId, causationId: e.causationId, replyTo });
  }

  /** Publishes one event; stored with a publish ack when a stream captures its subject. */
  async publish(e: NewEvent): Promise<PublishReceipt & { eventId: string }> {
    const out = this.encode(e);
    const receipt = await this.publisher.publish(out.subject, out.data, out.headers, out.id);
    return { ...receipt, eventId: out.id };
  }

  /**
   * Publishes one event and waits for its result. A subject stored by a stream is answered by the stream's
   * publish ack, so the result is asked for on an inbox named in `stufio-reply-to`; otherwise a plain NATS
   * request is used, and the handling sidecar answers on the reply subject.
   */
  async request(e: NewEvent, timeoutMs: number): Promise<RequestReply> {
    const probe = this.encode(e);
    const stream = await this.publisher.streamFor(probe.subject);
    if (stream === undefined) {
      const m = await this.nc.request(probe.subject, probe.data, { headers: probe.headers, timeout: timeoutMs });
      return toReply(probe.id, m.data, m.headers, 'core');
    }
    const inbox = createInbox();
    const sub = this.nc.subscribe(inbox, { max: 1, timeout: timeoutMs });
    try {
      const out = this.encode({ ...e, eventId: probe.id }, inbox);
      await this.publisher.publish(out.subject, out.data, out.headers, out.id);
      for await (const m of sub) return toReply(out.id, m.data, m.headers, 'jetstream');
      throw new Error(`no result within ${timeoutMs} ms`);
    } finally {
      sub.unsubscribe();
    }
  }
}

function toReply(eventId: string, data: Uint8Array, h: import('@nats-io/nats-core').MsgHdrs | undefined, via: 'core' | 'jetstream'): RequestReply {
  const headers: Record<string, string> = {};
  if (h) for (const k of h.keys()) headers[k] = h.get(k);
  const error = h?.get('Nats-Service-Error') || undefined;
  const text = Buffer.from(data).toString('utf8');
  let result: unknown;
  if (!error && text !== '') {
    try {
      result = JSON.parse(text);
    } catch {
      result = text;
    }
  }
  return { eventId, result, error, errorCode: h?.get('Nats-Service-Error-Code') || undefined, headers, via };
}

export { REPLY_TO };
