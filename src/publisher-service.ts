/**
 * The sidecar's EventPublisher gRPC service: lets the application next to it emit events outside a
 * handler through the same pipeline — CloudEvents headers, correlation, deterministic dedup ids when the
 * caller names an id, the publish allow-list, the payload limit, and stream storage with a publish ack.
 */
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import type { SidecarConfig } from './config.js';
import type { EventClient, NewEvent } from './event-client.js';
import { errorMessage, PublishError } from './errors.js';
import { compileAllowList, publishableEventTypeProblem } from './event-type.js';
import {
  EventPublisherService,
  type PublishEventInfo,
  type PublishRequest,
  type PublishResponse,
  type RequestRequest,
  type RequestResponse,
} from './gen/stufio/events/v1/handler.js';
import type { Logger } from './logger.js';
import { headersProblem } from './response.js';

export class PublisherService {
  readonly #server = new Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  readonly #isAllowed: (eventType: string) => boolean;
  #port = 0;

  constructor(
    private readonly client: EventClient,
    private readonly config: SidecarConfig,
    private readonly logger: Logger,
  ) {
    this.#isAllowed = compileAllowList(config.publish.allow);
    this.#server.addService(EventPublisherService, {
      publish: (call: ServerUnaryCall<PublishRequest, PublishResponse>, cb: sendUnaryData<PublishResponse>) => void this.#publish(call.request, cb),
      request: (call: ServerUnaryCall<RequestRequest, RequestResponse>, cb: sendUnaryData<RequestResponse>) => void this.#request(call.request, cb),
    });
  }

  get port(): number {
    return this.#port;
  }

  async listen(address: string): Promise<string> {
    const target = /^:\d+$/.test(address) ? `127.0.0.1${address}` : address;
    this.#port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(target, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    return target.startsWith('unix:') ? target : target.replace(/:\d+$/, `:${this.#port}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.tryShutdown(() => resolve()));
  }

  #validate(info: PublishEventInfo | undefined): { event: NewEvent } | { code: status; message: string } {
    if (!info) return { code: status.INVALID_ARGUMENT, message: 'event is required' };
    const problem = publishableEventTypeProblem(info.eventType);
    if (problem) return { code: status.INVALID_ARGUMENT, message: `event.event_type: ${problem}` };
    if (!this.#isAllowed(info.eventType)) return { code: status.PERMISSION_DENIED, message: `event.event_type: "${info.eventType}" is not in publish.allow` };
    if (info.payload !== undefined && info.data.length > 0) return { code: status.INVALID_ARGUMENT, message: 'event: set payload or data, not both' };
    const headerIssue = headersProblem(info.headers);
    if (headerIssue) return { code: status.INVALID_ARGUMENT, message: `event.headers: ${headerIssue}` };
    if (info.delayMs > 0) return { code: status.UNIMPLEMENTED, message: 'event.delay_ms: delayed publishing is not supported by EventPublisher' };
    const size = info.payload !== undefined ? Buffer.byteLength(JSON.stringify(info.payload)) : info.data.length;
    if (size > this.config.publish.max_payload_bytes) {
      return { code: status.RESOURCE_EXHAUSTED, message: `event: ${size} bytes exceed publish.max_payload_bytes (${this.config.publish.max_payload_bytes})` };
    }
    return {
      event: {
        eventType: info.eventType,
        entityId: info.entityId,
        payload: info.payload,
        data: info.data.length > 0 ? info.data : undefined,
        contentType: info.contentType,
        correlationId: info.correlationId,
        headers: info.headers,
        actor: info.actor,
      },
    };
  }

  async #publish(req: PublishRequest, cb: sendUnaryData<PublishResponse>): Promise<void> {
    const v = this.#validate(req.event);
    if ('code' in v) return cb({ code: v.code, details: v.message });
    try {
      const r = await this.client.publish({ ...v.event, eventId: req.eventId || undefined, causationId: req.causationId || undefined });
      cb(null, { eventId: r.eventId, subject: r.subject, stream: r.stream ?? '', sequence: r.sequence ?? 0, duplicate: r.duplicate ?? false });
    } catch (err) {
      this.logger.warn({ event_type: req.event?.eventType, err: errorMessage(err) }, 'EventPublisher publish failed');
      cb({ code: err instanceof PublishError ? status.UNAVAILABLE : status.INTERNAL, details: errorMessage(err) });
    }
  }

  async #request(req: RequestRequest, cb: sendUnaryData<RequestResponse>): Promise<void> {
    const v = this.#validate(req.event);
    if ('code' in v) return cb({ code: v.code, details: v.message });
    try {
      const reply = await this.client.request({ ...v.event, eventId: req.eventId || undefined }, req.timeoutMs || 10_000);
      cb(null, { result: reply.result, eventId: reply.eventId, error: reply.error ?? '', errorCode: reply.errorCode ?? '' });
    } catch (err) {
      const message = errorMessage(err);
      const timeout = /timeout|no result within/i.test(message);
      cb({ code: timeout ? status.DEADLINE_EXCEEDED : /no responders/i.test(message) ? status.UNAVAILABLE : status.INTERNAL, details: message });
    }
  }
}
