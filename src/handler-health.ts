/**
 * Watches the handler's grpc.health.v1 status. The sidecar consumes only while the handler is SERVING:
 * dispatch waits on `whenServing()`, so a handler that restarts pauses the flow instead of failing every
 * event into retries.
 */
import { EventEmitter } from 'node:events';
import type { HandlerClient, ServingStatus } from './handler-client.js';
import type { Logger } from './logger.js';

export class HandlerHealth extends EventEmitter<{ change: [ServingStatus] }> {
  #status: ServingStatus = 'UNKNOWN';
  #timer: NodeJS.Timeout | undefined;
  #waiters: (() => void)[] = [];
  #stopped = false;

  constructor(
    private readonly client: HandlerClient,
    private readonly options: { enabled: boolean; intervalMs: number; logger: Logger },
  ) {
    super();
    if (!options.enabled) this.#status = 'SERVING';
  }

  get status(): ServingStatus {
    return this.#status;
  }

  get serving(): boolean {
    return this.#status === 'SERVING';
  }

  /** Starts polling; resolves after the first check, whatever it said. */
  async start(): Promise<void> {
    if (!this.options.enabled) return;
    await this.poll();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    // Nobody may stay parked on a handler that will never be checked again.
    this.#release();
  }

  /** Resolves once the handler is SERVING (at once when it is), or when the monitor stops. */
  whenServing(): Promise<void> {
    if (this.serving || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Called by the dispatcher when a call fails with UNAVAILABLE: check now rather than at the next tick. */
  suspect(): void {
    if (!this.options.enabled || this.#stopped) return;
    clearTimeout(this.#timer);
    void this.poll();
  }

  private async poll(): Promise<void> {
    const next = await this.client.checkHealth(Math.min(2000, this.options.intervalMs * 2));
    if (this.#stopped) return;
    this.#set(next);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.poll(), this.options.intervalMs);
    this.#timer.unref();
  }

  #set(next: ServingStatus): void {
    if (next === this.#status) return;
    const previous = this.#status;
    this.#status = next;
    this.options.logger.info({ previous, status: next }, 'handler health changed');
    this.emit('change', next);
    if (next === 'SERVING') this.#release();
  }

  #release(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
