import { credentials, Metadata } from '@grpc/grpc-js';
import { EventPublisherClient, type PublishRequest, type PublishResponse, type RequestRequest, type RequestResponse } from './gen/stufio/events/v1/handler.js';
import { toPublishEventInfo, type PublishEvent } from './response.js';

/** The environment variable `connectPublisher()` reads when given no address (the sidecar's publisher.listen). */
export const PUBLISHER_ADDRESS_ENV = 'STUFIO_PUBLISHER_ADDRESS';
const DEFAULT_TIMEOUT_MS = 10_000;

export interface PublishOptions {
  /** Names the event: a retried publish with the same id is not stored twice (`duplicate` tells). */
  eventId?: string;
  /** The event this one was caused by. */
  causationId?: string;
  /** Deadline of the call (default 10 s). */
  timeoutMs?: number;
}

export interface PublishResult {
  eventId: string;
  subject: string;
  /** Set when a JetStream stream stored the event, with its `sequence` there. */
  stream: string;
  sequence: number;
  duplicate: boolean;
}

export interface RequestResult {
  eventId: string;
  /** The handler's result (JSON data), when it succeeded. */
  result: unknown;
  /** Set, with `errorCode`, when the handling side reported a failure: not thrown. */
  error: string;
  errorCode: string;
}

export interface EventPublisher {
  readonly address: string;
  /**
   * Publishes one event through the sidecar: CloudEvents headers, correlation, the publish allow-list and
   * size limit, stream storage with a publish ack. Rejects with the gRPC error the sidecar answered
   * (`code`: INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE, ...).
   */
  publish(event: PublishEvent, options?: PublishOptions): Promise<PublishResult>;
  /** Publishes one event and waits up to `timeoutMs` (default 10 s) for the handler's result. */
  request(event: PublishEvent, timeoutMs?: number, options?: Pick<PublishOptions, 'eventId'>): Promise<RequestResult>;
  close(): void;
}

/**
 * A client of the sidecar's EventPublisher service, to emit events outside a handler. `address`:
 * `unix:///path.sock` or `host:port`; default `$STUFIO_PUBLISHER_ADDRESS`. Connects on the first call.
 *
 *   const publisher = connectPublisher();
 *   const { stream, sequence } = await publisher.publish({ eventType: 'order.created', entityId: 'c-1', payload: order });
 *   const { result } = await publisher.request({ eventType: 'order.quote', payload: { total: 10 } }, 5000);
 */
export function connectPublisher(address: string | undefined = process.env[PUBLISHER_ADDRESS_ENV]): EventPublisher {
  if (!address) throw new Error(`no EventPublisher address: pass one or set ${PUBLISHER_ADDRESS_ENV} (the sidecar's publisher.listen)`);
  const client = new EventPublisherClient(address, credentials.createInsecure());
  const deadline = (ms: number) => ({ deadline: Date.now() + ms });
  return {
    address,
    async publish(event, options = {}) {
      const req: PublishRequest = { event: toPublishEventInfo(event), eventId: options.eventId ?? '', causationId: options.causationId ?? '' };
      const res = await new Promise<PublishResponse>((resolve, reject) =>
        client.publish(req, new Metadata(), deadline(options.timeoutMs ?? DEFAULT_TIMEOUT_MS), (err, r) => (err ? reject(err) : resolve(r))),
      );
      return { eventId: res.eventId, subject: res.subject, stream: res.stream, sequence: res.sequence, duplicate: res.duplicate };
    },
    async request(event, timeoutMs = DEFAULT_TIMEOUT_MS, options = {}) {
      const req: RequestRequest = { event: toPublishEventInfo(event), timeoutMs, eventId: options.eventId ?? '' };
      // The sidecar gives up after timeoutMs; the call allows it a little longer to say so.
      const res = await new Promise<RequestResponse>((resolve, reject) =>
        client.request(req, new Metadata(), deadline(timeoutMs + 2000), (err, r) => (err ? reject(err) : resolve(r))),
      );
      return { eventId: res.eventId, result: res.result, error: res.error, errorCode: res.errorCode };
    },
    close() {
      client.close();
    },
  };
}
