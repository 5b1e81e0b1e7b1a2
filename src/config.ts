/**
 * Sidecar configuration (DESIGN.md §4): a YAML or JSON file, then STUFIO_* environment overrides, validated
 * once into a frozen, fully-defaulted object. Nothing past this module reads raw configuration or the
 * environment. Every problem is reported with the field it concerns; the CLI exits 2 on any of them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, errorMessage } from './errors.js';
import { publishableEventTypeProblem, subscriptionPatternProblem } from './event-type.js';

const NAME = /^[A-Za-z0-9_-]+$/;
const positiveInt = (max: number) => z.number().int().min(1).max(max);
const nonNegativeInt = (max: number) => z.number().int().min(0).max(max);

const TlsSchema = z.strictObject({
  ca_file: z.string().min(1).optional(),
  cert_file: z.string().min(1).optional(),
  key_file: z.string().min(1).optional(),
});

const NatsSchema = z
  .strictObject({
    servers: z.array(z.string().min(1)).min(1).default(['nats://127.0.0.1:4222']),
    name: z.string().min(1).default('stufio-sidecar'),
    token: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    credentials_file: z.string().min(1).optional(),
    nkey_seed_file: z.string().min(1).optional(),
    tls: TlsSchema.optional(),
    /** Coalesce the socket writes of one event-loop turn (publishes, acks, replies) into one write. */
    batch_writes: z.boolean().default(true),
    /** How long to wait for the first connection before failing; reconnects after that are unbounded. */
    connect_timeout_ms: positiveInt(600_000).default(30_000),
  })
  .prefault({});

const HandlerSchema = z
  .strictObject({
    address: z.string().min(1).default('unix:///var/run/stufio/handler.sock'),
    timeout_ms: positiveInt(3_600_000).default(5000),
    mode: z.enum(['unary', 'stream']).default('unary'),
    /** Stream mode: parallel HandleStream calls, and events in flight on each. */
    streams: positiveInt(64).default(2),
    stream_window: positiveInt(100_000).default(1024),
    health_check: z.boolean().default(true),
    /** Polling period of grpc.health.v1 Check while running. */
    health_interval_ms: positiveInt(60_000).default(1000),
    describe: z.boolean().default(false),
    /**
     * Parse JSON bodies into EventMessage.payload. False sends only `data` (the client helpers parse it
     * on demand): no JSON parse and no protobuf Value encoding in the sidecar per event.
     */
    decode_payload: z.boolean().default(true),
    /** How long to wait for the handler to become SERVING at start before giving up (0 = forever). */
    startup_timeout_ms: nonNegativeInt(3_600_000).default(0),
  })
  .prefault({});

const StreamSchema = z.strictObject({
  name: z.string().regex(NAME, 'only A-Z a-z 0-9 _ - allowed'),
  subjects: z.array(z.string().min(1)).min(1),
  storage: z.enum(['file', 'memory']).default('file'),
  replicas: positiveInt(5).default(1),
  max_age_ms: nonNegativeInt(Number.MAX_SAFE_INTEGER).default(0),
  /** JetStream's duplicate window; the follow-ups' deterministic ids are deduplicated within it. */
  duplicate_window_ms: positiveInt(Number.MAX_SAFE_INTEGER).default(120_000),
});

const SubscriptionSchema = z.strictObject({
  event_type: z.string(),
  delivery: z.enum(['jetstream', 'core']).default('jetstream'),
  stream: z.string().regex(NAME, 'only A-Z a-z 0-9 _ - allowed').optional(),
  durable: z.string().regex(NAME, 'only A-Z a-z 0-9 _ - allowed').optional(),
  queue_group: z.string().regex(NAME, 'only A-Z a-z 0-9 _ - allowed').optional(),
  max_in_flight: positiveInt(100_000).default(64),
  /** Core only: messages queued in the client while every slot is busy before new ones are shed. */
  max_pending: positiveInt(10_000_000).default(10_000),
  max_deliver: positiveInt(1000).default(5),
  /** Fixed redelivery delays per attempt (the last repeats). Unset: exponential `backoff` with jitter. */
  backoff_ms: z.array(nonNegativeInt(86_400_000)).min(1).optional(),
  backoff: z
    .strictObject({
      initial_ms: nonNegativeInt(86_400_000).default(1000),
      max_ms: nonNegativeInt(86_400_000).default(60_000),
      multiplier: z.number().min(1).max(10).default(2),
      /** ± this fraction of each delay, so that events failing together do not come back together. */
      jitter: z.number().min(0).max(1).default(0.2),
    })
    .prefault({}),
  ack_wait_ms: positiveInt(3_600_000).default(30_000),
  ordering: z.enum(['none', 'entity']).default('none'),
});

const PublishSchema = z
  .strictObject({
    allow: z.array(z.string().min(1)).default(['*']),
    max_per_response: nonNegativeInt(100_000).default(100),
    max_payload_bytes: positiveInt(64 * 1024 * 1024).default(1_048_576),
    max_hops: positiveInt(10_000).default(32),
    /** Longest delay_ms accepted on a follow-up. */
    max_delay_ms: nonNegativeInt(Number.MAX_SAFE_INTEGER).default(0),
  })
  .prefault({});

const HttpSchema = z
  .strictObject({
    /** host:port for /metrics /healthz /readyz; empty disables the HTTP endpoint. */
    listen: z.string().default('0.0.0.0:9090'),
  })
  .prefault({});

const PublisherSchema = z
  .strictObject({
    /** Where the EventPublisher gRPC service listens (unix:///path.sock or host:port); empty disables it. */
    listen: z.string().default(''),
  })
  .prefault({});

const MetricsSchema = z
  .strictObject({
    record_subject: z.string().default(''),
    max_handler_metric_names: positiveInt(100_000).default(100),
    max_label_values: positiveInt(100_000).default(50),
    providers: z.array(z.string().min(1)).default([]),
    /** Histogram buckets for handler-returned numbers, by metric name (sanitised); `default` for the rest. */
    buckets: z.record(z.string(), z.array(z.number()).min(1)).default({}),
  })
  .prefault({});

const DeadLetterSchema = z
  .strictObject({
    /** Create `stream` for <prefix>.dlq.> when a jetstream subscription exists and no stream stores dead letters. */
    create_stream: z.boolean().default(true),
    stream: z.string().regex(NAME, 'only A-Z a-z 0-9 _ - allowed').default('STUFIO_DLQ'),
    max_age_ms: nonNegativeInt(Number.MAX_SAFE_INTEGER).default(14 * 24 * 3600 * 1000),
  })
  .prefault({});

const ShutdownSchema = z.strictObject({ grace_ms: nonNegativeInt(3_600_000).default(30_000) }).prefault({});

const BaseSchema = z.strictObject({
    nats: NatsSchema,
    subject_prefix: z.string().default('events'),
    handler: HandlerSchema,
    streams: z.array(StreamSchema).default([]),
    subscriptions: z.array(SubscriptionSchema).default([]),
    publish: PublishSchema,
    http: HttpSchema,
    publisher: PublisherSchema,
    dead_letter: DeadLetterSchema,
    metrics: MetricsSchema,
    shutdown: ShutdownSchema,
});

const ConfigSchema = BaseSchema
  // Runs even when some fields failed their own checks, so every problem is reported at once; each
  // section looks only at fields of the right shape (those that are not were reported already).
  .superRefine((cfg, ctx) => crossFieldProblems(cfg as Partial<RawConfig>, (path, message) => ctx.addIssue({ code: 'custom', path, message })), { when: () => true });

type RawConfig = z.output<typeof BaseSchema>;
type Problem = (path: (string | number)[], message: string) => void;

function crossFieldProblems(cfg: Partial<RawConfig>, problem: Problem): void {
  const section = (fn: () => void) => {
    try {
      fn();
    } catch {
      // A field of the wrong shape: its own check has reported it.
    }
  };
  section(() => {
    if (typeof cfg.subject_prefix !== 'string') return;
    if (cfg.subject_prefix !== '' && subscriptionPatternProblem(cfg.subject_prefix) !== undefined) {
      problem(['subject_prefix'], 'must be dot-separated tokens of A-Z a-z 0-9 _ - (or empty)');
    } else if (/[*>]/.test(cfg.subject_prefix)) {
      problem(['subject_prefix'], 'must not contain wildcards');
    }
  });
  section(() => {
    const nats = cfg.nats;
    if (!nats) return;
    const auth = (['token', 'user', 'credentials_file', 'nkey_seed_file'] as const).filter((k) => nats[k] !== undefined);
    if (auth.length > 1) problem(['nats', auth[1]!], `cannot be combined with nats.${auth[0]}`);
    if (nats.user !== undefined && nats.password === undefined) problem(['nats', 'password'], 'required with nats.user');
    if (nats.password !== undefined && nats.user === undefined) problem(['nats', 'user'], 'required with nats.password');
    if (nats.tls && (nats.tls.cert_file === undefined) !== (nats.tls.key_file === undefined)) {
      problem(['nats', 'tls', nats.tls.cert_file ? 'key_file' : 'cert_file'], 'cert_file and key_file go together');
    }
  });
  section(() => {
    if (!Array.isArray(cfg.subscriptions)) return;
    const durables = new Map<string, string>();
    cfg.subscriptions.forEach((sub, i) => {
      if (typeof sub === 'object' && sub !== null) subscriptionProblems(sub, ['subscriptions', i], `subscriptions[${i}]`, durables, problem);
    });
  });
  section(() =>
    cfg.streams?.forEach((stream, i) => {
      stream.subjects.forEach((subject, j) => {
        const p = typeof subject === 'string' ? subscriptionPatternProblem(subject) : undefined;
        if (p) problem(['streams', i, 'subjects', j], p);
      });
    }),
  );
  section(() =>
    cfg.publish?.allow.forEach((glob, i) => {
      if (glob === '*' || glob === '>' || typeof glob !== 'string') return;
      const p = subscriptionPatternProblem(glob);
      if (p) problem(['publish', 'allow', i], p);
    }),
  );
  section(() => {
    const subject = cfg.metrics?.record_subject;
    if (typeof subject !== 'string' || subject === '') return;
    if (subscriptionPatternProblem(subject) !== undefined) problem(['metrics', 'record_subject'], 'must be a NATS subject');
    else if (/[*>]/.test(subject)) problem(['metrics', 'record_subject'], 'must not contain wildcards');
  });
  section(() => {
    for (const [name, buckets] of Object.entries(cfg.metrics?.buckets ?? {})) {
      if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) problem(['metrics', 'buckets', name], 'must be strictly increasing');
    }
  });
  section(() => {
    const listen = cfg.http?.listen;
    if (typeof listen === 'string' && listen !== '' && parseListen(listen) === undefined) problem(['http', 'listen'], 'expected host:port (or empty to disable)');
  });
  section(() => {
    const listen = cfg.publisher?.listen;
    if (typeof listen === 'string' && listen !== '' && !/^(unix:|[^/\s]*:\d+$)/.test(listen)) problem(['publisher', 'listen'], 'expected unix:///path.sock or host:port (or empty to disable)');
  });
  section(() => {
    const address = cfg.handler?.address;
    if (typeof address === 'string' && !/^(unix:|unix-abstract:|dns:|ipv4:|ipv6:|[^/\s]*:\d+$)/.test(address)) {
      problem(['handler', 'address'], 'expected unix:///path.sock or host:port');
    }
  });
}

/** The rules one subscription follows, from the file or declared by the handler. */
function subscriptionProblems(
  sub: Partial<z.output<typeof SubscriptionSchema>>,
  path: (string | number)[],
  label: string,
  durables: Map<string, string>,
  problem: Problem,
): void {
  const at = (field: string) => [...path, field];
  if (typeof sub.event_type === 'string') {
    const patternProblem = subscriptionPatternProblem(sub.event_type);
    if (patternProblem) problem(at('event_type'), patternProblem);
  }
  if ((sub.delivery ?? 'jetstream') === 'jetstream') {
    if (!sub.durable) problem(at('durable'), 'required for jetstream');
    else if (durables.has(sub.durable)) problem(at('durable'), `already used by ${durables.get(sub.durable)}`);
    else durables.set(sub.durable, label);
    if (sub.queue_group) problem(at('queue_group'), 'only for core delivery (jetstream replicas share the durable)');
  } else {
    if (sub.durable) problem(at('durable'), 'only for jetstream delivery');
    if (sub.stream) problem(at('stream'), 'only for jetstream delivery');
  }
}

type Mutable<T> = T;
export type SidecarConfig = DeepReadonly<z.output<typeof ConfigSchema>>;
export type SubscriptionConfig = SidecarConfig['subscriptions'][number];
export type StreamConfig = SidecarConfig['streams'][number];
export type NatsConfig = SidecarConfig['nats'];
type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : Mutable<T>;

/** Environment variables that override the file, and the field each one sets. */
export const ENV_OVERRIDES: Readonly<Record<string, { path: string[]; kind: 'string' | 'number' | 'boolean' | 'list' }>> = {
  STUFIO_NATS_SERVERS: { path: ['nats', 'servers'], kind: 'list' },
  STUFIO_NATS_NAME: { path: ['nats', 'name'], kind: 'string' },
  STUFIO_NATS_TOKEN: { path: ['nats', 'token'], kind: 'string' },
  STUFIO_NATS_USER: { path: ['nats', 'user'], kind: 'string' },
  STUFIO_NATS_PASSWORD: { path: ['nats', 'password'], kind: 'string' },
  STUFIO_NATS_CREDENTIALS_FILE: { path: ['nats', 'credentials_file'], kind: 'string' },
  STUFIO_NATS_NKEY_SEED_FILE: { path: ['nats', 'nkey_seed_file'], kind: 'string' },
  STUFIO_SUBJECT_PREFIX: { path: ['subject_prefix'], kind: 'string' },
  STUFIO_HANDLER_ADDRESS: { path: ['handler', 'address'], kind: 'string' },
  STUFIO_HANDLER_TIMEOUT_MS: { path: ['handler', 'timeout_ms'], kind: 'number' },
  STUFIO_HANDLER_MODE: { path: ['handler', 'mode'], kind: 'string' },
  STUFIO_HANDLER_HEALTH_CHECK: { path: ['handler', 'health_check'], kind: 'boolean' },
  STUFIO_HANDLER_DESCRIBE: { path: ['handler', 'describe'], kind: 'boolean' },
  STUFIO_HTTP_LISTEN: { path: ['http', 'listen'], kind: 'string' },
  STUFIO_PUBLISHER_LISTEN: { path: ['publisher', 'listen'], kind: 'string' },
  STUFIO_METRICS_RECORD_SUBJECT: { path: ['metrics', 'record_subject'], kind: 'string' },
  STUFIO_SHUTDOWN_GRACE_MS: { path: ['shutdown', 'grace_ms'], kind: 'number' },
};

/** Fields whose values never leave the process (logs, `check` output). */
const SECRET_FIELDS = new Set(['token', 'password']);

export interface LoadOptions {
  /** Path of a YAML or JSON file; omitted = defaults plus environment. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** False for the client commands (publish, request), which consume nothing. Default true. */
  requireSubscriptions?: boolean;
}

/** Reads, merges and validates the configuration. Throws ConfigError listing every problem. */
export function loadConfig(options: LoadOptions = {}): SidecarConfig {
  let raw: unknown = {};
  if (options.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError([`config file ${options.file}: ${errorMessage(err)}`], { cause: err });
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError([`config file ${options.file}: not valid YAML or JSON: ${errorMessage(err)}`], { cause: err });
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError([`config file ${options.file}: expected a mapping at the top level`]);
    }
  }
  return parseConfig(raw, options.env ?? process.env, options);
}

/** Validates an already-parsed configuration object (after applying the environment overrides). */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = {}, options: Pick<LoadOptions, 'requireSubscriptions'> = {}): SidecarConfig {
  const fromEnv = new Map<string, string>();
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ConfigError(['(root): expected object']);
  }
  const merged = structuredClone(raw ?? {}) as Record<string, unknown>;
  const envProblems: string[] = [];
  for (const [name, { path, kind }] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const converted = convertEnv(value, kind);
    if (converted === undefined) {
      envProblems.push(`${path.join('.')} (from ${name}): expected a ${kind}`);
      continue;
    }
    setPath(merged, path, converted);
    fromEnv.set(path.join('.'), name);
  }
  const result = ConfigSchema.safeParse(merged);
  const problems = [...envProblems];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const field = formatPath(issue.path);
      const envName = fromEnv.get(issue.path.join('.'));
      problems.push(`${field || '(root)'}${envName ? ` (from ${envName})` : ''}: ${describeIssue(issue)}`);
    }
  }
  if (result.success && options.requireSubscriptions !== false && result.data.subscriptions.length === 0 && !result.data.handler.describe) {
    problems.push('subscriptions: at least one subscription is required (or set handler.describe: true)');
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return deepFreeze(result.data) as SidecarConfig;
}

/** The configuration as `check` prints it: resolved, with secrets replaced. */
export function redactConfig(config: SidecarConfig): unknown {
  return JSON.parse(
    JSON.stringify(config, (key, value: unknown) => {
      if (SECRET_FIELDS.has(key) && typeof value === 'string') return '[redacted]';
      if (key === 'servers' && Array.isArray(value)) return value.map((v) => (typeof v === 'string' ? redactUrl(v) : v));
      return value;
    }),
  );
}

/** `nats://alice:secret@host` → `nats://alice:[redacted]@host`; a lone token user part is hidden whole. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon >= 0 ? `${scheme}${userinfo.slice(0, colon)}:[redacted]@` : `${scheme}[redacted]@`;
  });
}

export function parseListen(listen: string): { host: string; port: number } | undefined {
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1') || '0.0.0.0';
  return { host, port };
}

/** Whether `eventType` could be published at all (used by the CLI before it connects). */
export function checkPublishableEventType(eventType: string): void {
  const problem = publishableEventTypeProblem(eventType);
  if (problem) throw new ConfigError([`event_type: ${problem}`]);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    case 'invalid_type':
      // zod does not keep the input on the issue; its message says what it received.
      return /received undefined/.test(issue.message) ? 'required' : `expected ${issue.expected}`;
    default:
      return issue.message;
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function convertEnv(value: string, kind: 'string' | 'number' | 'boolean' | 'list'): unknown {
  switch (kind) {
    case 'string':
      return value;
    case 'number': {
      const n = Number(value);
      return Number.isFinite(n) && value.trim() !== '' ? n : undefined;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(value)) return true;
      if (/^(0|false|no|off)$/i.test(value)) return false;
      return undefined;
    case 'list':
      return value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates subscriptions a handler declared through Describe, with the same rules as the file's.
 * A declared jetstream subscription without a durable gets `<handler name>-<event type>-<hash>` so that
 * replicas share it and two patterns (`order.*`, `order.>`) never share one.
 */
export function parseDeclaredSubscriptions(
  declared: readonly Record<string, unknown>[],
  handlerName: string,
  takenDurables: ReadonlyMap<string, string> = new Map(),
): SubscriptionConfig[] {
  const problems: string[] = [];
  const out: SubscriptionConfig[] = [];
  const durables = new Map(takenDurables);
  declared.forEach((raw, i) => {
    const label = `describe.subscriptions[${i}]`;
    const withDefaults = { ...raw };
    if ((withDefaults.delivery ?? 'jetstream') === 'jetstream' && !withDefaults.durable && typeof withDefaults.event_type === 'string') {
      withDefaults.durable = declaredDurable(handlerName, withDefaults.event_type);
    }
    const result = SubscriptionSchema.safeParse(withDefaults);
    if (!result.success) {
      for (const issue of result.error.issues) problems.push(`${label}${formatPath(issue.path) ? `.${formatPath(issue.path)}` : ''}: ${describeIssue(issue)}`);
      return;
    }
    const before = problems.length;
    subscriptionProblems(result.data, [], label, durables, (path, message) => problems.push(`${label}${path.length ? `.${formatPath(path)}` : ''}: ${message}`));
    if (problems.length === before) out.push(deepFreeze(result.data));
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

function declaredDurable(handlerName: string, eventType: string): string {
  const readable = `${handlerName}-${eventType}`.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 100);
  return `${readable}-${createHash('sha256').update(eventType).digest('hex').slice(0, 8)}`;
}
