/**
 * The gRPC client for the user's handler: unary Handle with a per-call deadline, Describe, and the
 * grpc.health.v1 check. Errors come back as HandlerCallError carrying the gRPC status code, which the
 * outcome table maps to an action.
 */
import { credentials, Metadata, status, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthClient } from './gen/grpc/health/v1/health.js';
import {
  EventHandlerClient,
  type EventMessage,
  type HandlerDescription,
  type HandlerResponse,
} from './gen/stufio/events/v1/handler.js';
import { HandlerCallError } from './errors.js';
import { HandlerStreams } from './handler-stream.js';
import { silentLogger, type Logger } from './logger.js';

export interface HandlerClientOptions {
  address: string;
  timeoutMs: number;
  mode?: 'unary' | 'stream';
  /** Stream mode: parallel HandleStream calls and events in flight on each. */
  streams?: number;
  streamWindow?: number;
  logger?: Logger;
  /** Largest response accepted from the handler; bounded so a runaway handler cannot exhaust memory. */
  maxResponseBytes?: number;
}

export type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' | 'UNREACHABLE';

const DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024;

export class HandlerClient {
  readonly #handler: EventHandlerClient;
  readonly #health: HealthClient;
  readonly #timeoutMs: number;
  readonly #streams: HandlerStreams | undefined;

  constructor(options: HandlerClientOptions) {
    const channelOptions: ChannelOptions = {
      'grpc.max_receive_message_length': options.maxResponseBytes ?? DEFAULT_MAX_MESSAGE,
      'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE,
      // The handler is next to us: reconnect quickly when it restarts instead of backing off to minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2000,
      'grpc.keepalive_time_ms': 30_000,
    };
    const target = normaliseAddress(options.address);
    this.#handler = new EventHandlerClient(target, credentials.createInsecure(), channelOptions);
    // Same target and options: grpc-js shares the subchannel, so health and Handle probe the same connection.
    this.#health = new HealthClient(target, credentials.createInsecure(), channelOptions);
    this.#timeoutMs = options.timeoutMs;
    if (options.mode === 'stream') {
      this.#streams = new HandlerStreams(this.#handler, {
        streams: options.streams ?? 2,
        window: options.streamWindow ?? 1024,
        logger: options.logger ?? silentLogger(),
      });
    }
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  handle(event: EventMessage, timeoutMs = this.#timeoutMs): Promise<HandlerResponse> {
    if (this.#streams) return this.#streams.handle(event, timeoutMs);
    return new Promise((resolve, reject) => {
      this.#handler.handle(event, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
        if (err) reject(toCallError(err));
        else resolve(response);
      });
    });
  }

  describe(timeoutMs = this.#timeoutMs): Promise<HandlerDescription> {
    return new Promise((resolve, reject) => {
      this.#handler.describe({}, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
        if (err) reject(toCallError(err));
        else resolve(response);
      });
    });
  }

  /** One grpc.health.v1 Check of the overall server (service ""). */
  checkHealth(timeoutMs = 2000): Promise<ServingStatus> {
    return new Promise((resolve) => {
      this.#health.check({ service: '' }, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
        if (err) {
          // A handler without the health service still handles events: treat UNIMPLEMENTED as serving.
          resolve(err.code === status.UNIMPLEMENTED ? 'SERVING' : 'UNREACHABLE');
          return;
        }
        switch (response.status) {
          case HealthCheckResponse_ServingStatus.SERVING:
            resolve('SERVING');
            break;
          case HealthCheckResponse_ServingStatus.NOT_SERVING:
            resolve('NOT_SERVING');
            break;
          default:
            resolve('UNKNOWN');
        }
      });
    });
  }

  close(): void {
    this.#streams?.close();
    this.#handler.close();
    this.#health.close();
  }
}

function toCallError(err: ServiceError): HandlerCallError {
  return new HandlerCallError(err.code ?? status.UNKNOWN, err.details || err.message, { cause: err });
}

/** grpc-js takes unix:///abs/path and host:port; `:port` is a common shorthand for the local host. */
export function normaliseAddress(address: string): string {
  if (/^:\d+$/.test(address)) return `127.0.0.1${address}`;
  return address;
}
