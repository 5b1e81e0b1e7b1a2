/**
 * Publishes what the sidecar emits: follow-ups, dead-letter copies, replies and metrics records.
 *
 * A subject captured by a JetStream stream is published with a publish ack (the event is stored before
 * the inbound one is acked) and a Nats-Msg-Id for deduplication. A subject no stream captures is published
 * on core NATS followed by a flush, which confirms the server received it. Which subjects have a stream is
 * looked up once and cached for a while, so streams added later are picked up.
 */
import { headers as natsHeaders, NoRespondersError, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { jserrors } from '@nats-io/jetstream/internal';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { errorMessage, PublishError } from './errors.js';
import { JetStreamPublisher } from './jetstream-publisher.js';
import type { OutboundEvent } from './cloudevents.js';
import type { Logger } from './logger.js';

export interface PublishReceipt {
  subject: string;
  stream?: string;
  sequence?: number;
  duplicate?: boolean;
}

export interface PublisherOptions {
  logger: Logger;
  /** How long a "which stream captures this subject" answer is trusted. */
  streamCacheMs?: number;
  /** Publish-ack timeout. */
  timeoutMs?: number;
}

export class Publisher {
  readonly #streamOf = new Map<string, { stream: string | undefined; until: number }>();
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  readonly #jsPublisher: JetStreamPublisher | undefined;
  #flushing: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    js: JetStreamClient | undefined,
    private readonly jsm: JetStreamManager | undefined,
    private readonly options: PublisherOptions,
  ) {
    this.#cacheMs = options.streamCacheMs ?? 30_000;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#jsPublisher = js ? new JetStreamPublisher(nc, this.#timeoutMs) : undefined;
  }

  close(): void {
    this.#jsPublisher?.close();
  }

  /** Publishes the events concurrently and resolves once every one is stored (or flushed). */
  async publishAll(events: readonly OutboundEvent[]): Promise<PublishReceipt[]> {
    if (events.length === 0) return [];
    if (events.length === 1) return [await this.publish(events[0]!.subject, events[0]!.data, events[0]!.headers, events[0]!.id)];
    return Promise.all(events.map((e) => this.publish(e.subject, e.data, e.headers, e.id)));
  }

  /** Publishes one message durably where a stream captures the subject. Throws PublishError. */
  async publish(subject: string, data: Uint8Array, headers: MsgHdrs | undefined, msgID?: string): Promise<PublishReceipt> {
    const cached = this.#cachedStream(subject);
    const stream = cached !== null ? cached : await this.streamFor(subject);
    try {
      if (stream !== undefined && this.#jsPublisher) {
        const ack = await this.#jsPublisher.publish(subject, data, headers ?? natsHeaders(), msgID);
        return { subject, stream: ack.stream, sequence: ack.seq, duplicate: ack.duplicate };
      }
      this.nc.publish(subject, data, { headers });
      await this.#flush();
      return { subject };
    } catch (err) {
      // The stream may have been removed or moved: look it up again next time.
      this.#streamOf.delete(subject);
      if (err instanceof PublishError) throw err;
      throw new PublishError(`publish to ${subject} failed: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** One flush (a PING round trip) shared by every core publish of the same event-loop turn. */
  #flush(): Promise<void> {
    this.#flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.#flushing = undefined;
        this.nc.flush().then(resolve, reject);
      });
    });
    return this.#flushing;
  }

  /** The cached answer, or null when it must be looked up. */
  #cachedStream(subject: string): string | undefined | null {
    const cached = this.#streamOf.get(subject);
    return cached && cached.until > Date.now() ? cached.stream : null;
  }

  /** Fire-and-forget on core NATS: replies and metrics records, where a lost message loses no event. */
  publishCore(subject: string, data: Uint8Array, headers?: MsgHdrs): void {
    try {
      this.nc.publish(subject, data, { headers });
    } catch (err) {
      this.options.logger.warn({ subject, err: errorMessage(err) }, 'core publish failed');
    }
  }

  /** The stream that captures `subject`, or undefined; cached. */
  async streamFor(subject: string): Promise<string | undefined> {
    if (!this.jsm) return undefined;
    const cached = this.#cachedStream(subject);
    if (cached !== null) return cached;
    let stream: string | undefined;
    try {
      stream = await this.jsm.streams.find(subject);
    } catch (err) {
      // Only a definite "no stream" may downgrade to core NATS; anything else (a timeout while a cluster
      // elects a leader) must fail the publish so the inbound event is retried, not stored nowhere.
      if (!(err instanceof jserrors.StreamNotFoundError || err instanceof NoRespondersError || err instanceof jserrors.JetStreamNotEnabled)) {
        throw new PublishError(`cannot tell which stream stores ${subject}: ${errorMessage(err)}`, { cause: err });
      }
      stream = undefined;
    }
    if (this.#streamOf.size > 10_000) this.#streamOf.clear();
    this.#streamOf.set(subject, { stream, until: Date.now() + this.#cacheMs });
    return stream;
  }
}
