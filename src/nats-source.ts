/**
 * One running subscription: a core NATS subscription (optionally in a queue group) or a JetStream durable
 * pull consumer. It turns each NATS message into an InboundMessage plus the means to settle it, and never
 * has more than `max_in_flight` of them in the dispatcher at once.
 */
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/nats-core';
import { AckPolicy, DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import type { SubscriptionConfig } from './config.js';
import { REPLY_TO, headerMap, type InboundMessage } from './cloudevents.js';
import { errorMessage, ServerFeatureError } from './errors.js';
import { compareVersions } from './versions.js';
import { eventTypeOfSubject, isDeadLetterEventType, patternTargetsDeadLetters, subjectFor } from './event-type.js';
import type { Logger } from './logger.js';

/** How the dispatcher settles one message; calls after the first settling one are ignored. */
export interface Settlement {
  ack(): void;
  nak(delayMs: number): void;
  term(reason: string): void;
  /** Extends the JetStream ack deadline while a slow handler works. */
  working(): void;
  /** Sends the result (or error) to whoever waits for it; false when nobody does. */
  respond(data: Uint8Array, headers: MsgHdrs): boolean;
}

export interface Delivered {
  inbound: InboundMessage;
  settle: Settlement;
}

export type DeliverFn = (subscription: SubscriptionConfig, delivered: Delivered) => Promise<void>;

export interface SourceDeps {
  nc: NatsConnection;
  js?: JetStreamClient;
  jsm?: JetStreamManager;
  prefix: string;
  deliver: DeliverFn;
  /** Core only: a message refused because the sidecar is overloaded (it is answered, counted, not handled). */
  shed?: (subscription: SubscriptionConfig, delivered: Delivered) => void;
  logger: Logger;
}

/** Counting semaphore: the loop waits for a free slot before it takes the next message. */
class Slots {
  #free: number;
  #waiters: (() => void)[] = [];
  #idle: (() => void)[] = [];
  #freed: (() => void)[] = [];
  #interrupted = false;
  constructor(readonly size: number) {
    this.#free = size;
  }
  get used(): number {
    return this.size - this.#free;
  }
  get free(): number {
    return this.#free;
  }
  /**
   * Resolves once at least one slot is free, waiting up to `graceMs` more for `preferred` of them: asking
   * the server for one message at a time under load costs a pull request per message.
   */
  async whenFree(preferred: number, graceMs: number): Promise<void> {
    while (this.#free === 0 && !this.#interrupted) await new Promise<void>((resolve) => this.#freed.push(resolve));
    if (this.#free >= preferred) return;
    const until = Date.now() + graceMs;
    while (this.#free < preferred && Date.now() < until && !this.#interrupted) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, until - Date.now()));
        this.#freed.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  acquire(): Promise<void> | undefined {
    if (this.#free > 0) {
      this.#free--;
      return undefined;
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#free++;
    if (this.#freed.length > 0) for (const w of this.#freed.splice(0)) w();
    if (this.#free === this.size) {
      for (const w of this.#idle.splice(0)) w();
    }
  }
  /** Stops every whenFree() wait for good (the source is stopping). */
  interrupt(): void {
    this.#interrupted = true;
    for (const w of this.#freed.splice(0)) w();
  }
  /** Resolves once nothing is in flight. */
  idle(): Promise<void> {
    if (this.#free === this.size) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

export abstract class NatsSource {
  protected readonly slots: Slots;
  protected stopping = false;
  protected loop: Promise<void> | undefined;
  readonly subject: string;

  constructor(
    readonly config: SubscriptionConfig,
    protected readonly deps: SourceDeps,
  ) {
    this.slots = new Slots(config.max_in_flight);
    this.subject = subjectFor(deps.prefix, config.event_type);
  }

  get inFlight(): number {
    return this.slots.used;
  }

  get running(): boolean {
    return this.loop !== undefined && !this.stopping;
  }

  abstract start(): Promise<void>;

  /** Stops taking new messages; in-flight ones go on (see `idle()`). Idempotent. */
  abstract stop(): Promise<void>;

  /** Resolves when every message taken has been settled. */
  idle(): Promise<void> {
    return this.slots.idle();
  }

  /** Dead letters reach only subscriptions that name them: `>` must not loop them back into handlers. */
  protected skipsDeadLetter(subject: string): boolean {
    if (patternTargetsDeadLetters(this.config.event_type)) return false;
    const type = eventTypeOfSubject(this.deps.prefix, subject);
    return type !== undefined && isDeadLetterEventType(type);
  }

  protected dispatch(inbound: InboundMessage, settle: Settlement): void {
    this.deps.deliver(this.config, { inbound, settle }).then(
      () => this.slots.release(),
      (err: unknown) => {
        // The dispatcher settles every message itself; reaching here is a bug, and the message is left
        // unsettled so that JetStream redelivers it.
        this.deps.logger.error({ err: errorMessage(err), subject: inbound.subject }, 'dispatch failed unexpectedly');
        this.slots.release();
      },
    );
  }
}

export class CoreSource extends NatsSource {
  #sub: Subscription | undefined;

  async start(): Promise<void> {
    const queue = this.config.queue_group;
    this.#sub = this.deps.nc.subscribe(this.subject, queue ? { queue } : {});
    this.loop = this.#run(this.#sub);
    // Make sure the server registered the interest before we report running.
    await this.deps.nc.flush();
  }

  async #run(sub: Subscription): Promise<void> {
    const consumer = this.config.queue_group ?? '';
    for await (const m of sub) {
      if (this.skipsDeadLetter(m.subject)) continue;
      const inbound: InboundMessage = {
        subject: m.subject,
        data: m.data,
        headers: m.headers,
        mode: 'core',
        attempt: 1,
        consumer,
        replyExpected: (m.reply !== undefined && m.reply !== '') || (m.headers?.has(REPLY_TO) ?? false),
      };
      const settle = coreSettlement(this.deps.nc, m);
      // Core NATS has no flow control: the client queues whatever the server sends. Past max_pending
      // queued messages with every slot busy, shed instead of growing without bound (requesters get 503).
      if (this.slots.free === 0 && sub.getPending() > this.config.max_pending) {
        this.deps.shed?.(this.config, { inbound, settle });
        continue;
      }
      const wait = this.slots.acquire();
      if (wait) await wait;
      this.dispatch(inbound, settle);
    }
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.loop;
    this.stopping = true;
    if (this.#sub && !this.#sub.isClosed()) {
      try {
        await this.#sub.drain();
      } catch {
        this.#sub.unsubscribe();
      }
    }
    await this.loop;
  }
}

function coreSettlement(nc: NatsConnection, m: Msg): Settlement {
  return {
    ack() {},
    nak() {},
    term() {},
    working() {},
    respond(data, headers) {
      // A message a stream also stored was sent with a JetStream publish: its reply subject waits for the
      // stream's ack, and the requester named the inbox for the result in stufio-reply-to instead.
      const replyTo = m.headers ? headerMap(m.headers)[REPLY_TO] : undefined;
      if (replyTo) {
        nc.publish(replyTo, data, { headers });
        return true;
      }
      if (!m.reply) return false;
      return m.respond(data, { headers });
    },
  };
}

export class JetStreamSource extends NatsSource {
  #messages: ConsumerMessages | undefined;
  #stream = '';
  readonly #inProgress = new Set<{ since: number; msg: JsMsg; done: boolean }>();
  #heartbeat: NodeJS.Timeout | undefined;
  #acks: JsMsg[] = [];
  readonly #termWithReason = compareVersions(this.deps.nc.info?.version ?? '0.0.0', '2.10.0') >= 0;
  #ackTimer: NodeJS.Timeout | undefined;

  get stream(): string {
    return this.#stream;
  }

  async start(): Promise<void> {
    const { js, jsm } = this.deps;
    if (!js || !jsm) throw new ServerFeatureError(`subscription ${this.config.event_type}: JetStream is not available on this server`);
    this.#stream = this.config.stream ?? (await this.#findStream());
    await this.#ensureConsumer(jsm);
    const consumer = await js.consumers.get(this.#stream, this.config.durable!);
    this.loop = this.#run(consumer);
    // One timer for all in-flight messages, not one per message: tell JetStream we are still working on
    // anything older than a third of the ack wait, so a slow handler's event is not redelivered under it.
    const period = Math.max(100, Math.floor(this.config.ack_wait_ms / 3));
    this.#heartbeat = setInterval(() => {
      const threshold = Date.now() - period;
      for (const entry of this.#inProgress) if (entry.since <= threshold) entry.msg.working();
    }, period);
    this.#heartbeat.unref();
  }

  async #findStream(): Promise<string> {
    try {
      return await this.deps.jsm!.streams.find(this.subject);
    } catch (err) {
      throw new ServerFeatureError(`subscriptions: no stream captures ${this.subject}; add one under streams or name it in stream`, { cause: err });
    }
  }

  async #ensureConsumer(jsm: JetStreamManager): Promise<void> {
    const durable = this.config.durable!;
    const wanted = {
      filter_subject: this.subject,
      ack_wait: nanos(this.config.ack_wait_ms),
      // The sidecar counts attempts itself and dead-letters past max_deliver; the server must keep
      // redelivering so that a sidecar killed during the last attempt cannot strand the message.
      max_deliver: -1,
      max_ack_pending: Math.max(1000, this.config.max_in_flight * 4),
    };
    try {
      const info = await jsm.consumers.info(this.#stream, durable);
      const c = info.config;
      if (c.filter_subject !== wanted.filter_subject || c.ack_wait !== wanted.ack_wait || c.max_deliver !== wanted.max_deliver || (c.max_ack_pending ?? 0) < wanted.max_ack_pending) {
        await jsm.consumers.update(this.#stream, durable, wanted);
        this.deps.logger.info({ stream: this.#stream, durable }, 'consumer updated');
      }
    } catch (err) {
      if (!(err instanceof jserrors.ConsumerNotFoundError)) throw err;
      await jsm.consumers.add(this.#stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ...wanted });
      this.deps.logger.info({ stream: this.#stream, durable }, 'consumer created');
    }
  }

  /**
   * Pulls exactly as many messages as there are free slots (fetch, not consume): a message is never held
   * in a client buffer where no working() heartbeat reaches it, so a slow or paused handler cannot get
   * the backlog redelivered under us.
   */
  async #run(consumer: Consumer): Promise<void> {
    const durable = this.config.durable!;
    const preferred = Math.max(1, Math.floor(this.config.max_in_flight / 4));
    while (!this.stopping) {
      await this.slots.whenFree(preferred, FETCH_GATHER_MS);
      if (this.stopping) break;
      try {
        this.#messages = await consumer.fetch({ max_messages: this.slots.free, expires: FETCH_EXPIRES_MS });
        for await (const m of this.#messages) {
          if (this.stopping) {
            // Taken from the server but not started: hand it back at once rather than after the ack wait.
            m.nak();
            continue;
          }
          if (this.skipsDeadLetter(m.subject)) {
            m.ack();
            continue;
          }
          const settle = this.#settlement(m);
          // Never waits: the fetch asked for no more than the free slots.
          const wait = this.slots.acquire();
          if (wait) await wait;
          const info = m.info;
          const inbound: InboundMessage = {
            subject: m.subject,
            data: m.data,
            headers: m.headers,
            mode: 'jetstream',
            attempt: info.deliveryCount,
            consumer: durable,
            replyExpected: m.headers?.has(REPLY_TO) ?? false,
            stream: info.stream,
            streamSequence: info.streamSequence,
            storedAtMs: Math.floor(info.timestampNanos / 1e6),
          };
          this.dispatch(inbound, settle);
        }
      } catch (err) {
        if (this.stopping) break;
        // A reconnect, a leader election, a consumer being recreated: pull again shortly.
        this.deps.logger.warn({ durable, err: errorMessage(err) }, 'fetch failed; retrying');
        await new Promise((r) => setTimeout(r, FETCH_RETRY_MS));
      } finally {
        this.#messages = undefined;
      }
    }
  }

  #settlement(m: JsMsg): Settlement {
    const entry = { since: Date.now(), msg: m, done: false };
    this.#inProgress.add(entry);
    const nc = this.deps.nc;
    const finish = (): boolean => {
      if (entry.done) return false;
      entry.done = true;
      this.#inProgress.delete(entry);
      return true;
    };
    return {
      ack: () => finish() && this.#queueAck(m),
      nak: (delayMs) => finish() && m.nak(delayMs > 0 ? delayMs : undefined),
      // `+TERM <reason>` needs nats-server 2.10; an older server does not understand it at all.
      term: (reason) => finish() && (this.#termWithReason ? m.term(reason) : m.term()),
      working: () => !entry.done && m.working(),
      respond(data, headers) {
        const replyTo = m.headers ? headerMap(m.headers)[REPLY_TO] : undefined;
        if (!replyTo) return false;
        nc.publish(replyTo, data, { headers });
        return true;
      },
    };
  }

  /**
   * Acks leave in batches, a few milliseconds late: every write is a syscall, and acks are never on the
   * latency path (the follow-ups and the reply went out before). Late acks are safe; ack_wait is seconds.
   */
  #queueAck(m: JsMsg): void {
    this.#acks.push(m);
    if (this.#acks.length >= ACK_BATCH_MAX) this.flushAcks();
    else this.#ackTimer ??= setTimeout(() => this.flushAcks(), ACK_BATCH_MS);
  }

  /** Sends every queued ack now (also before the connection drains). */
  flushAcks(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const acks = this.#acks;
    if (acks.length === 0) return;
    this.#acks = [];
    for (const m of acks) m.ack();
  }

  async stop(): Promise<void> {
    if (this.stopping) return this.loop;
    this.stopping = true;
    this.slots.interrupt();
    try {
      this.#messages?.stop();
    } catch (err) {
      this.deps.logger.warn({ err: errorMessage(err), durable: this.config.durable }, 'closing consumer failed');
    }
    await this.loop;
  }

  /** Called once in-flight work is settled (or the grace period ran out). */
  dispose(): void {
    this.flushAcks();
    clearInterval(this.#heartbeat);
  }
}

const ACK_BATCH_MS = 2;
/** A fetch waits this long for messages before it is renewed (idle cost: one pull request per period). */
const FETCH_EXPIRES_MS = 5000;
/** Under load, wait this long for a quarter of the slots to free up before pulling. */
const FETCH_GATHER_MS = 2;
const FETCH_RETRY_MS = 250;
const ACK_BATCH_MAX = 256;

function nanos(ms: number): number {
  return ms * 1_000_000;
}
