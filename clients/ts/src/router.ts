import type { EventMessage, SubscriptionDeclaration } from './gen/stufio/events/v1/handler.js';
import type { HandlerReturn } from './response.js';

export type HandlerFn = (event: EventMessage) => HandlerReturn | Promise<HandlerReturn>;

/** How the sidecar should subscribe, reported through Describe (the sidecar's file may override it). */
export interface SubscribeOptions {
  delivery?: 'jetstream' | 'core';
  stream?: string;
  durable?: string;
  queueGroup?: string;
  maxInFlight?: number;
  maxDeliver?: number;
}

interface Route {
  pattern: string;
  tokens: string[];
  fn: HandlerFn;
  options: SubscribeOptions;
}

/** The seed's @stufio_event_subscriber: event types (NATS wildcards allowed) mapped to handler functions. */
export class EventRouter {
  readonly #routes: Route[] = [];

  subscribe(eventType: string, fn: HandlerFn, options: SubscribeOptions = {}): this {
    this.#routes.push({ pattern: eventType, tokens: eventType.split('.'), fn, options });
    return this;
  }

  /** The handler for an event type: an exact subscription first, then the first matching wildcard. */
  match(eventType: string): HandlerFn | undefined {
    const exact = this.#routes.find((r) => r.pattern === eventType);
    if (exact) return exact.fn;
    const tokens = eventType.split('.');
    return this.#routes.find((r) => matches(r.tokens, tokens))?.fn;
  }

  declarations(): SubscriptionDeclaration[] {
    return this.#routes.map((r) => ({
      eventType: r.pattern,
      delivery: r.options.delivery ?? '',
      stream: r.options.stream ?? '',
      durable: r.options.durable ?? '',
      queueGroup: r.options.queueGroup ?? '',
      maxInFlight: r.options.maxInFlight ?? 0,
      maxDeliver: r.options.maxDeliver ?? 0,
    }));
  }

  static from(handlers: Record<string, HandlerFn> | EventRouter): EventRouter {
    if (handlers instanceof EventRouter) return handlers;
    const router = new EventRouter();
    for (const [type, fn] of Object.entries(handlers)) router.subscribe(type, fn);
    return router;
  }
}

function matches(pattern: string[], tokens: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return tokens.length > i;
    if (i >= tokens.length || (p !== '*' && p !== tokens[i])) return false;
  }
  return pattern.length === tokens.length;
}
