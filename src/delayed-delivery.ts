/**
 * Durable delayed follow-ups (`delay_ms` > 0). A delayed follow-up is stored at once in the
 * STUFIO_DELAYED stream with its due time; a durable consumer shared by all replicas holds each message
 * until it is due by nak'ing it with the remaining delay (JetStream keeps the timer, so a crash of any
 * sidecar loses nothing), then publishes it to its real subject with its deterministic Nats-Msg-Id, and
 * only then acks it. Works on every supported server (nak with delay needs 2.7+).
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/nats-core';
import { AckPolicy, DeliverPolicy, StorageType, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import type { OutboundEvent } from './cloudevents.js';
import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import type { Publisher } from './publisher.js';

export const DELAYED_STREAM = 'STUFIO_DELAYED';
export const DELAYED_SUBJECT_PREFIX = 'stufio.delayed';
const DURABLE = 'stufio-delayer';
const DUE_AT = 'stufio-due-at';
const TARGET = 'stufio-target-subject';
/** Longest single nak delay: long delays are held in hops, so a changed clock is re-checked now and then. */
const MAX_HOLD_MS = 60 * 60 * 1000;

export class DelayedDelivery {
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;

  constructor(
    private readonly deps: { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; publisher: Publisher; logger: Logger; replicas?: number },
  ) {}

  /** The message that stores `event` until it is due. */
  static hold(event: OutboundEvent, now = Date.now()): OutboundEvent {
    const h = natsHeaders();
    for (const key of event.headers.keys()) h.set(key, event.headers.get(key));
    h.set(DUE_AT, String(now + event.delayMs));
    h.set(TARGET, event.subject);
    return { ...event, subject: `${DELAYED_SUBJECT_PREFIX}.${event.eventType}`, headers: h, delayMs: 0 };
  }

  async start(): Promise<void> {
    const { jsm, js } = this.deps;
    try {
      await jsm.streams.info(DELAYED_STREAM);
    } catch (err) {
      if (!(err instanceof jserrors.StreamNotFoundError)) throw err;
      await jsm.streams.add({
        name: DELAYED_STREAM,
        subjects: [`${DELAYED_SUBJECT_PREFIX}.>`],
        storage: StorageType.File,
        num_replicas: this.deps.replicas ?? 1,
        duplicate_window: 120 * 1_000_000_000,
      });
    }
    try {
      await jsm.consumers.info(DELAYED_STREAM, DURABLE);
    } catch (err) {
      if (!(err instanceof jserrors.ConsumerNotFoundError)) throw err;
      await jsm.consumers.add(DELAYED_STREAM, { durable_name: DURABLE, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: 30 * 1_000_000_000, max_deliver: -1 });
    }
    const consumer = await js.consumers.get(DELAYED_STREAM, DURABLE);
    this.#messages = await consumer.consume({ max_messages: 256 });
    this.#loop = this.#run(this.#messages);
  }

  async #run(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      const due = Number(m.headers?.get(DUE_AT));
      const target = m.headers?.get(TARGET);
      if (!target || !Number.isFinite(due)) {
        this.deps.logger.error({ seq: m.seq }, 'delayed message without due time or target; dropped');
        m.term();
        continue;
      }
      const wait = due - Date.now();
      if (wait > 0) {
        m.nak(Math.min(wait, MAX_HOLD_MS));
        continue;
      }
      const h = natsHeaders();
      for (const key of m.headers!.keys()) if (key !== DUE_AT && key !== TARGET) h.set(key, m.headers!.get(key));
      try {
        await this.deps.publisher.publish(target, m.data, h, h.get('Nats-Msg-Id') || undefined);
        m.ack();
      } catch (err) {
        this.deps.logger.warn({ subject: target, err: errorMessage(err) }, 'delayed publish failed; will retry');
        m.nak(1000);
      }
    }
  }

  async stop(): Promise<void> {
    await this.#messages?.close();
    await this.#loop;
  }
}
