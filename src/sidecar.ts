/**
 * The sidecar's lifecycle: created → starting → running → draining → stopped, or failed. Every transition
 * is logged; `stop()` is idempotent and returns the same promise every time.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { jetstream, jetstreamManager, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import type { NatsConnection } from '@nats-io/nats-core';
import { parseDeclaredSubscriptions, parseListen, redactUrl, type SidecarConfig, type StreamConfig, type SubscriptionConfig } from './config.js';
import { Dispatcher, type HandledEvent } from './dispatcher.js';
import { errorMessage, IllegalStateError, ServerFeatureError } from './errors.js';
import { HandlerClient } from './handler-client.js';
import { HandlerHealth } from './handler-health.js';
import { HttpServer } from './http-server.js';
import { createLogger, type Logger } from './logger.js';
import { SidecarMetrics } from './metrics.js';
import { checkServerFeatures, connectNats, serverVersion } from './nats-connection.js';
import { CoreSource, JetStreamSource, type NatsSource } from './nats-source.js';
import { Publisher } from './publisher.js';
import { deadLetterSubject } from './event-type.js';
import { DelayedDelivery } from './delayed-delivery.js';
import { PublisherService } from './publisher-service.js';
import { EventClient } from './event-client.js';
import { BUILT_IN_PROVIDERS, MetricsProviderRegistry } from './metrics-providers.js';
import { MetricsRecorder } from './metrics-records.js';

export type SidecarState = 'created' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

export interface SidecarOptions {
  logger?: Logger;
  /** Providers registered in code, in addition to the built-in ones and those in metrics.providers. */
  metricsProviders?: MetricsProviderRegistry;
}

export class Sidecar extends EventEmitter<{ state: [SidecarState]; handled: [HandledEvent] }> {
  #state: SidecarState = 'created';
  readonly config: SidecarConfig;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  readonly handler: HandlerClient;
  readonly health: HandlerHealth;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  #publisher: Publisher | undefined;
  #sources: NatsSource[] = [];
  #http: HttpServer | undefined;
  #publisherService: PublisherService | undefined;
  #delayed: DelayedDelivery | undefined;
  #publisherAddress: string | undefined;
  #httpAddress: AddressInfo | undefined;
  #connected = false;
  #stopping: Promise<void> | undefined;
  #subscriptions: readonly SubscriptionConfig[] = [];
  readonly #providers: MetricsProviderRegistry;

  constructor(config: SidecarConfig, options: SidecarOptions = {}) {
    super();
    this.#providers = options.metricsProviders ?? new MetricsProviderRegistry();
    this.config = config;
    this.logger = options.logger ?? createLogger();
    this.metrics = new SidecarMetrics({
      maxHandlerMetricNames: config.metrics.max_handler_metric_names,
      maxLabelValues: config.metrics.max_label_values,
      buckets: config.metrics.buckets,
    });
    this.handler = new HandlerClient({
      address: config.handler.address,
      timeoutMs: config.handler.timeout_ms,
      mode: config.handler.mode,
      streams: config.handler.streams,
      streamWindow: config.handler.stream_window,
      logger: this.logger,
    });
    this.health = new HandlerHealth(this.handler, { enabled: config.handler.health_check, intervalMs: config.handler.health_interval_ms, logger: this.logger });
    this.health.on('change', (s) => this.metrics.handlerServing.set(s === 'SERVING' ? 1 : 0));
  }

  get state(): SidecarState {
    return this.#state;
  }

  get httpAddress(): AddressInfo | undefined {
    return this.#httpAddress;
  }

  /** Where the EventPublisher service listens, when enabled. */
  get publisherAddress(): string | undefined {
    return this.#publisherAddress;
  }

  get connection(): NatsConnection | undefined {
    return this.#nc;
  }

  /** The subscriptions in effect (from the file, or declared by the handler through Describe). */
  get subscriptions(): readonly SubscriptionConfig[] {
    return this.#subscriptions;
  }

  /** Reasons the sidecar is not ready to take events; empty when it is. */
  notReady(): string[] {
    const reasons: string[] = [];
    if (this.#state !== 'running') reasons.push(`state is ${this.#state}`);
    if (!this.#connected) reasons.push('nats not connected');
    if (!this.health.serving) reasons.push(`handler ${this.health.status.toLowerCase()}`);
    if (this.#state === 'running' && !this.#sources.every((s) => s.running)) reasons.push('subscriptions not running');
    return reasons;
  }

  async start(): Promise<void> {
    if (this.#state !== 'created') throw new IllegalStateError(`start() called in state ${this.#state}`);
    this.#transition('starting');
    try {
      await this.#startHttp();
      await this.#connect();
      await this.#waitForHandler();
      this.#subscriptions = await this.#resolveSubscriptions();
      checkServerFeatures(this.#nc!, { jetstream: this.#subscriptions.some((s) => s.delivery === 'jetstream') });
      await this.#ensureStreams();
      if (this.config.publish.max_delay_ms > 0) {
        if (!this.#js || !this.#jsm) throw new ServerFeatureError('publish.max_delay_ms > 0 needs JetStream (delayed follow-ups are stored until due)');
        this.#delayed = new DelayedDelivery({ nc: this.#nc!, js: this.#js, jsm: this.#jsm, publisher: this.#publisher!, logger: this.logger });
        await this.#delayed.start();
      }
      const dispatcher = new Dispatcher({
        config: this.config,
        handler: this.handler,
        health: this.health,
        publisher: this.#publisher!,
        metrics: this.metrics,
        logger: this.logger,
        recorder: await this.#recorder(),
      });
      dispatcher.onHandled((h) => this.emit('handled', h));
      for (const sub of this.#subscriptions) {
        const deps = { nc: this.#nc!, js: this.#js, jsm: this.#jsm, prefix: this.config.subject_prefix, deliver: dispatcher.dispatch, shed: dispatcher.shed, logger: this.logger };
        const source = sub.delivery === 'jetstream' ? new JetStreamSource(sub, deps) : new CoreSource(sub, deps);
        this.#sources.push(source);
        await source.start();
        this.logger.info({ event_type: sub.event_type, delivery: sub.delivery, subject: source.subject, durable: sub.durable, queue_group: sub.queue_group }, 'subscription started');
      }
      if (this.config.publisher.listen !== '') {
        const client = await EventClient.create(this.#nc!, { prefix: this.config.subject_prefix, source: `stufio-sidecar/${this.config.nats.name}`, logger: this.logger });
        this.#publisherService = new PublisherService(client, this.config, this.logger);
        this.#publisherAddress = await this.#publisherService.listen(this.config.publisher.listen);
        this.logger.info({ address: this.#publisherAddress }, 'event publisher listening');
      }
      this.#transition('running');
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'start failed');
      await this.#teardown();
      this.#transition('failed');
      throw err;
    }
  }

  /**
   * Stops taking events, lets in-flight ones finish within `shutdown.grace_ms`, drains NATS and closes.
   * JetStream events still unsettled when the grace period ends are redelivered later (nothing acked early).
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'created' || this.#state === 'failed' || this.#state === 'stopped') {
      await this.#teardown();
      if (this.#state !== 'failed') this.#transition('stopped');
      return;
    }
    if (this.#state === 'starting') await new Promise<void>((resolve) => this.once('state', () => resolve()));
    if (this.#state !== 'running') return;
    this.#transition('draining');
    await Promise.all(this.#sources.map((s) => s.stop()));
    const inFlight = this.#sources.reduce((n, s) => n + s.inFlight, 0);
    if (inFlight > 0) this.logger.info({ in_flight: inFlight, grace_ms: this.config.shutdown.grace_ms }, 'waiting for in-flight events');
    const drained = await waitFor(
      Promise.all(this.#sources.map((s) => s.idle())).then(() => true),
      this.config.shutdown.grace_ms,
    );
    if (!drained) {
      const left = this.#sources.reduce((n, s) => n + s.inFlight, 0);
      this.logger.warn({ in_flight: left }, 'grace period over; unsettled jetstream events will be redelivered');
    }
    await this.#teardown();
    this.#transition('stopped');
  }

  async #teardown(): Promise<void> {
    await this.#publisherService?.close();
    await this.#delayed?.stop().catch(() => {});
    for (const s of this.#sources) if (s instanceof JetStreamSource) s.dispose();
    this.health.stop();
    this.#publisher?.close();
    if (this.#nc && !this.#nc.isClosed()) {
      try {
        await this.#nc.drain();
      } catch {
        await this.#nc.close().catch(() => {});
      }
    }
    this.handler.close();
    await this.#http?.close();
  }

  async #startHttp(): Promise<void> {
    if (this.config.http.listen === '') return;
    const { host, port } = parseListen(this.config.http.listen)!;
    this.#http = new HttpServer(this.metrics.registry, { live: () => this.#state !== 'failed', notReady: () => this.notReady() });
    this.#httpAddress = await this.#http.listen(host, port);
    this.logger.info({ address: this.#httpAddress.address, port: this.#httpAddress.port }, 'http listening');
  }

  async #connect(): Promise<void> {
    const nc = await connectNats(this.config.nats);
    this.#nc = nc;
    this.#connected = true;
    this.metrics.natsConnected.set(1);
    this.logger.info({ server: redactUrl(nc.getServer()), version: serverVersion(nc) }, 'nats connected');
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.#connected = false;
          this.metrics.natsConnected.set(0);
          this.logger.warn({ server: s.server }, 'nats disconnected');
        } else if (s.type === 'reconnect') {
          this.#connected = true;
          this.metrics.natsConnected.set(1);
          this.metrics.natsReconnects.inc();
          this.logger.info({ server: s.server }, 'nats reconnected');
        }
      }
    })();
    void nc.closed().then((err) => {
      this.#connected = false;
      this.metrics.natsConnected.set(0);
      if (err && this.#state === 'running') {
        this.logger.error({ err: errorMessage(err) }, 'nats connection closed');
        this.#transition('failed');
      }
    });
    if (nc.info?.jetstream) {
      this.#js = jetstream(nc);
      this.#jsm = await jetstreamManager(nc);
    }
    this.#publisher = new Publisher(nc, this.#js, this.#jsm, { logger: this.logger });
  }

  async #waitForHandler(): Promise<void> {
    if (!this.config.handler.health_check) {
      this.metrics.handlerServing.set(1);
      return;
    }
    await this.health.start();
    if (this.health.serving) {
      this.metrics.handlerServing.set(1);
      return;
    }
    this.logger.info({ address: this.config.handler.address }, 'waiting for handler to be serving');
    const limit = this.config.handler.startup_timeout_ms;
    const serving = await waitFor(this.health.whenServing().then(() => true), limit > 0 ? limit : Number.POSITIVE_INFINITY);
    if (!serving || !this.health.serving) throw new Error(`handler at ${this.config.handler.address} not serving after ${limit} ms`);
  }

  async #resolveSubscriptions(): Promise<readonly SubscriptionConfig[]> {
    if (!this.config.handler.describe) return this.config.subscriptions;
    const description = await this.handler.describe();
    const declared = parseDeclaredSubscriptions(
      description.subscriptions.map((d) => stripEmpty({
        event_type: d.eventType,
        delivery: d.delivery,
        stream: d.stream,
        durable: d.durable,
        queue_group: d.queueGroup,
        max_in_flight: d.maxInFlight,
        max_deliver: d.maxDeliver,
      })),
      description.name || this.config.nats.name,
      new Map(this.config.subscriptions.filter((s) => s.durable).map((s, i) => [s.durable!, `subscriptions[${i}]`])),
    );
    this.logger.info({ handler: description.name, sdk: description.sdk, subscriptions: declared.map((s) => s.event_type) }, 'handler described its subscriptions');
    // The file's subscriptions win for an event type both name: the operator overrides the handler.
    const fromFile = new Set(this.config.subscriptions.map((s) => s.event_type));
    return [...this.config.subscriptions, ...declared.filter((s) => !fromFile.has(s.event_type))];
  }

  async #recorder(): Promise<MetricsRecorder | undefined> {
    if (this.config.metrics.record_subject === '') return undefined;
    await this.#providers.discover(this.config.metrics.providers);
    const providers = [...BUILT_IN_PROVIDERS.filter((b) => !this.#providers.providers.some((p) => p.name === b.name)), ...this.#providers.providers];
    this.logger.info({ subject: this.config.metrics.record_subject, providers: providers.map((p) => p.name) }, 'metrics records enabled');
    return new MetricsRecorder({ subject: this.config.metrics.record_subject, providers, publisher: this.#publisher, metrics: this.metrics, logger: this.logger });
  }

  async #ensureStreams(): Promise<void> {
    if (this.config.streams.length > 0 && !this.#jsm) throw new Error('streams are configured but JetStream is not enabled on the server');
    for (const stream of this.config.streams) await ensureStream(this.#jsm!, stream, this.logger);
    await this.#ensureDeadLetterStream();
  }

  /** A dead letter is terminated only after it is stored: make sure something stores <prefix>.dlq.>. */
  async #ensureDeadLetterStream(): Promise<void> {
    if (!this.#jsm || !this.#subscriptions.some((s) => s.delivery === 'jetstream')) return;
    const probe = deadLetterSubject(this.config.subject_prefix, 'probe');
    try {
      await this.#jsm.streams.find(probe);
      return;
    } catch (err) {
      if (!(err instanceof jserrors.StreamNotFoundError)) throw err;
    }
    const dl = this.config.dead_letter;
    if (!dl.create_stream) {
      this.logger.warn({ subject: deadLetterSubject(this.config.subject_prefix, '>') }, 'no stream stores dead letters; they are published but not kept');
      return;
    }
    await ensureStream(this.#jsm, { name: dl.stream, subjects: [deadLetterSubject(this.config.subject_prefix, '>')], storage: 'file', replicas: 1, max_age_ms: dl.max_age_ms, duplicate_window_ms: 120_000 }, this.logger);
  }

  #transition(next: SidecarState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.logger.info({ previous, state: next }, 'sidecar state');
    this.emit('state', next);
  }
}

/** Creates the stream when missing; an existing stream is left as its operator configured it. */
export async function ensureStream(jsm: JetStreamManager, stream: StreamConfig, logger: Logger): Promise<void> {
  try {
    await jsm.streams.info(stream.name);
    return;
  } catch (err) {
    if (!(err instanceof jserrors.StreamNotFoundError)) throw err;
  }
  await jsm.streams.add({
    name: stream.name,
    subjects: [...stream.subjects],
    storage: stream.storage === 'memory' ? StorageType.Memory : StorageType.File,
    num_replicas: stream.replicas,
    max_age: stream.max_age_ms * 1_000_000,
    duplicate_window: stream.duplicate_window_ms * 1_000_000,
  });
  logger.info({ stream: stream.name, subjects: stream.subjects }, 'stream created');
}

function stripEmpty(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== '' && v !== 0 && v !== undefined));
}

/** Resolves `true` when `p` resolves within `ms`, else `false`. */
async function waitFor(p: Promise<boolean>, ms: number): Promise<boolean> {
  if (ms === Number.POSITIVE_INFINITY) return p;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
