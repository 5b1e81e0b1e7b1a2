/**
 * Stream mode (`handler.mode: stream`): events travel over a few long-lived HandleStream calls instead of
 * one unary call each, and responses are matched back by event_id. The semantics stay those of unary
 * mode: a deadline per event, an error status per event (a broken stream fails its pending events with
 * UNAVAILABLE, which the outcome table retries), and a bounded window of events in flight per stream.
 */
import { Metadata, status, type ClientDuplexStream } from '@grpc/grpc-js';
import type { EventHandlerClient, EventMessage, HandlerResponse } from './gen/stufio/events/v1/handler.js';
import { HandlerCallError } from './errors.js';
import type { Logger } from './logger.js';

interface Pending {
  resolve(r: HandlerResponse): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export interface StreamOptions {
  /** Parallel HandleStream calls; events are spread over them. */
  streams: number;
  /** Events in flight per stream before `handle` waits for room. */
  window: number;
  logger: Logger;
}

class HandleStreamCall {
  #call: ClientDuplexStream<EventMessage, HandlerResponse> | undefined;
  /** Keyed by event_id; a list because the same event can be in flight twice (a redelivery racing). */
  readonly #pending = new Map<string, Pending[]>();
  #size = 0;
  #waiters: (() => void)[] = [];

  constructor(
    private readonly client: EventHandlerClient,
    private readonly options: StreamOptions,
  ) {}

  get inFlight(): number {
    return this.#size;
  }

  async handle(event: EventMessage, timeoutMs: number): Promise<HandlerResponse> {
    while (this.#size >= this.options.window) await new Promise<void>((r) => this.#waiters.push(r));
    const call = this.#ensureCall();
    this.#size++;
    return new Promise<HandlerResponse>((resolve, reject) => {
      const id = event.eventId;
      const entry: Pending = {
        resolve,
        reject,
        timer: setTimeout(() => {
          if (this.#remove(id, entry)) reject(new HandlerCallError(status.DEADLINE_EXCEEDED, `no response on the stream within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      const list = this.#pending.get(id);
      if (list) list.push(entry);
      else this.#pending.set(id, [entry]);
      call.write(event);
    });
  }

  close(): void {
    this.#call?.end();
    this.#failAll(status.CANCELLED, 'sidecar closing');
  }

  #ensureCall(): ClientDuplexStream<EventMessage, HandlerResponse> {
    if (this.#call) return this.#call;
    const call = this.client.handleStream(new Metadata());
    call.on('data', (r: HandlerResponse) => {
      const list = this.#pending.get(r.eventId);
      const entry = list?.shift();
      if (!entry) {
        this.options.logger.warn({ event_id: r.eventId }, 'stream response for no pending event');
        return;
      }
      if (list!.length === 0) this.#pending.delete(r.eventId);
      clearTimeout(entry.timer);
      this.#release();
      entry.resolve(r);
    });
    const broken = (code: number, message: string) => {
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#failAll(code, message);
    };
    call.on('error', (err: { code?: number; details?: string; message: string }) => broken(err.code ?? status.UNAVAILABLE, err.details || err.message));
    call.on('end', () => broken(status.UNAVAILABLE, 'handler ended the stream'));
    this.#call = call;
    return call;
  }

  #remove(id: string, entry: Pending): boolean {
    const list = this.#pending.get(id);
    const i = list?.indexOf(entry) ?? -1;
    if (i < 0) return false;
    list!.splice(i, 1);
    if (list!.length === 0) this.#pending.delete(id);
    this.#release();
    return true;
  }

  #release(): void {
    this.#size--;
    this.#waiters.shift()?.();
  }

  #failAll(code: number, message: string): void {
    const all = [...this.#pending.values()].flat();
    this.#pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      this.#release();
      p.reject(new HandlerCallError(code, message));
    }
  }
}

export class HandlerStreams {
  readonly #calls: HandleStreamCall[];
  #next = 0;

  constructor(client: EventHandlerClient, options: StreamOptions) {
    this.#calls = Array.from({ length: Math.max(1, options.streams) }, () => new HandleStreamCall(client, options));
  }

  handle(event: EventMessage, timeoutMs: number): Promise<HandlerResponse> {
    // Least loaded of two neighbours: cheap, and keeps one slow stream from collecting everything.
    const a = this.#calls[this.#next]!;
    this.#next = (this.#next + 1) % this.#calls.length;
    const b = this.#calls[this.#next]!;
    return (b.inFlight < a.inFlight ? b : a).handle(event, timeoutMs);
  }

  close(): void {
    for (const c of this.#calls) c.close();
  }
}
