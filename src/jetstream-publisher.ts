/**
 * JetStream publishing with pipelined publish acks. Every publish goes out as a plain NATS publish whose
 * reply subject is `<inbox>.<n>` under one wildcard subscription, and the stream's PubAck resolves the
 * matching promise. Compared with nats.js' js.publish (one request each), this builds no Error objects
 * and no timer per publish — one sweeper checks deadlines — and many publishes share one socket write.
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { PublishError } from './errors.js';

export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** The server answered "no responders": no stream captures the subject (or JetStream is off). */
export class NoStreamError extends PublishError {
  override readonly name = 'NoStreamError';
}

interface Pending {
  resolve(ack: PubAck): void;
  reject(err: Error): void;
  deadline: number;
  subject: string;
}

const MSG_ID = 'Nats-Msg-Id';

export class JetStreamPublisher {
  readonly #inbox: string;
  readonly #prefixLength: number;
  readonly #pending = new Map<number, Pending>();
  readonly #sub: Subscription;
  readonly #sweeper: NodeJS.Timeout;
  #next = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs = 5000,
  ) {
    this.#inbox = createInbox();
    this.#prefixLength = this.#inbox.length + 1;
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (_err, m) => this.#onReply(m) });
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(500, Math.max(50, timeoutMs / 4)));
    this.#sweeper.unref();
  }

  get pending(): number {
    return this.#pending.size;
  }

  publish(subject: string, data: Uint8Array, headers: MsgHdrs, msgID?: string): Promise<PubAck> {
    if (msgID) headers.set(MSG_ID, msgID);
    const n = ++this.#next;
    return new Promise<PubAck>((resolve, reject) => {
      this.#pending.set(n, { resolve, reject, deadline: Date.now() + this.timeoutMs, subject });
      try {
        this.nc.publish(subject, data, { headers, reply: `${this.#inbox}.${n}` });
      } catch (err) {
        this.#pending.delete(n);
        reject(new PublishError(`publish to ${subject} failed: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#sub.unsubscribe();
    this.#failAll('publisher closed');
  }

  #onReply(m: Msg): void {
    const n = Number(m.subject.slice(this.#prefixLength));
    const p = this.#pending.get(n);
    if (!p) return;
    this.#pending.delete(n);
    if (m.headers?.hasError) {
      if (m.headers.code === 503) p.reject(new NoStreamError(`no stream stores ${p.subject}`));
      else p.reject(new PublishError(`publish to ${p.subject} failed: ${m.headers.code} ${m.headers.description}`));
      return;
    }
    let ack: { stream?: string; seq?: number; duplicate?: boolean; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = JSON.parse(Buffer.from(m.data).toString('utf8')) as typeof ack;
    } catch {
      p.reject(new PublishError(`publish to ${p.subject}: unreadable publish ack`));
      return;
    }
    if (ack.error) {
      p.reject(new PublishError(`publish to ${p.subject} refused: ${ack.error.description ?? ack.error.code}`));
      return;
    }
    p.resolve({ stream: ack.stream ?? '', seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
  }

  #sweep(): void {
    const now = Date.now();
    for (const [n, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(n);
      p.reject(new PublishError(`no publish ack for ${p.subject} within ${this.timeoutMs} ms`));
    }
  }

  #failAll(reason: string): void {
    for (const p of this.#pending.values()) p.reject(new PublishError(reason));
    this.#pending.clear();
  }
}
