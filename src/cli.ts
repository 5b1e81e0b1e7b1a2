#!/usr/bin/env node
/**
 * stufio-sidecar — run | check | publish | request | demo (DESIGN.md §5).
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.
 */
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from './errors.js';
import { loadConfig, redactConfig, checkPublishableEventType, type SidecarConfig } from './config.js';
import { connectNats } from './nats-connection.js';
import { createLogger, type Logger } from './logger.js';
import type { NatsConnection } from '@nats-io/nats-core';
import { EventClient } from './event-client.js';
import { Sidecar } from './sidecar.js';

const USAGE = `usage: stufio-sidecar <command> [options]

commands:
  run --config FILE                 run the sidecar (default command)
  check --config FILE               validate the configuration and print it resolved
  publish EVENT_TYPE JSON           publish an event   [--entity-id ID] [--correlation-id ID]
  request EVENT_TYPE JSON           publish and print the handler's result   [--timeout-ms N]
  dlq list [--event-type T] [--limit N]       list dead letters (JSON lines)
  dlq replay SEQ... | --all [--event-type T] [--keep]
                                    publish dead letters again to their original subject
  demo                              nats-server + example handler + sidecar on this machine

options for publish/request/dlq: --config FILE, --server URL (else STUFIO_NATS_SERVERS, else nats://127.0.0.1:4222)
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'run';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'check':
      return check(rest);
    case 'publish':
    case 'request':
      return publishOrRequest(command, rest);
    case 'dlq':
      return deadLetters(rest);
    case 'demo': {
      const { runDemo } = await import('./demo.js');
      return runDemo(rest);
    }
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function configFrom(values: { config?: string; server?: string }, requireSubscriptions = true): SidecarConfig {
  const env = { ...process.env };
  if (values.server) env.STUFIO_NATS_SERVERS = values.server;
  return loadConfig({ file: values.config, env, requireSubscriptions });
}

async function check(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const config = configFrom(values);
  process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
  return 0;
}

async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  const config = configFrom(values);
  const sidecar = new Sidecar(config);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      sidecar.logger.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    sidecar.logger.info({ signal }, 'signal received, draining');
    void sidecar.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await sidecar.start();
    await new Promise<void>((resolve) => {
      const check = (state: string) => {
        if (state === 'stopped' || state === 'failed') resolve();
      };
      sidecar.on('state', check);
      check(sidecar.state);
    });
    await sidecar.stop();
    return sidecar.state === 'failed' ? 1 : 0;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    sidecar.logger.error({ err: errorMessage(err) }, 'sidecar failed');
    await sidecar.stop();
    return 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/** The options every command that talks to NATS as a client takes. */
const CLIENT_OPTIONS = {
  config: { type: 'string', short: 'c' },
  server: { type: 'string', short: 's' },
} as const;

/** Connects as a client (publish, request, dlq), runs `fn`, and always closes the connection. */
async function withNatsClient<T>(values: { config?: string; server?: string }, fn: (nc: NatsConnection, config: SidecarConfig, logger: Logger) => Promise<T>): Promise<T> {
  const config = configFrom(values, false);
  const logger = createLogger({ level: process.env.STUFIO_LOG_LEVEL ?? 'warn' });
  const nc = await connectNats({ ...config.nats }, Math.min(config.nats.connect_timeout_ms, 10_000));
  try {
    return await fn(nc, config, logger);
  } finally {
    await nc.close();
  }
}

async function publishOrRequest(command: 'publish' | 'request', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...CLIENT_OPTIONS,
      'entity-id': { type: 'string' },
      'correlation-id': { type: 'string' },
      'event-id': { type: 'string' },
      'timeout-ms': { type: 'string' },
    },
    strict: true,
  });
  const [eventType, json] = positionals;
  if (!eventType || json === undefined || positionals.length > 2) throw new UsageError(`${command} needs EVENT_TYPE and JSON`);
  checkPublishableEventType(eventType);
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch (err) {
    throw new UsageError(`JSON argument is not valid JSON: ${errorMessage(err)}`);
  }
  const timeoutMs = values['timeout-ms'] ? Number(values['timeout-ms']) : 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout-ms must be a positive number');
  return withNatsClient(values, async (nc, config, logger) => {
    const client = await EventClient.create(nc, { prefix: config.subject_prefix, logger });
    const event = { eventType, payload, entityId: values['entity-id'], correlationId: values['correlation-id'], eventId: values['event-id'] };
    if (command === 'publish') {
      const receipt = await client.publish(event);
      process.stdout.write(`${JSON.stringify({ event_id: receipt.eventId, subject: receipt.subject, stream: receipt.stream, sequence: receipt.sequence, duplicate: receipt.duplicate })}\n`);
      return 0;
    }
    const reply = await client.request(event, timeoutMs);
    if (reply.error) {
      process.stderr.write(`error ${reply.errorCode ?? ''}: ${reply.error}\n`);
      return 1;
    }
    process.stdout.write(`${JSON.stringify(reply.result)}\n`);
    return 0;
  });
}

async function deadLetters(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...CLIENT_OPTIONS,
      'event-type': { type: 'string' },
      limit: { type: 'string' },
      all: { type: 'boolean' },
      keep: { type: 'boolean' },
    },
    strict: true,
  });
  const [action, ...seqs] = positionals;
  if (action !== 'list' && action !== 'replay') throw new UsageError('dlq needs list or replay');
  if (action === 'replay' && seqs.length === 0 && !values.all) throw new UsageError('dlq replay needs sequence numbers or --all');
  const sequences = seqs.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`"${s}" is not a stream sequence number`);
    return n;
  });
  const limit = values.limit ? Number(values.limit) : action === 'list' ? 100 : 10_000;
  if (!Number.isInteger(limit) || limit <= 0) throw new UsageError('--limit must be a positive integer');
  return withNatsClient(values, async (nc, config, logger) => {
    const { DeadLetters } = await import('./dead-letters.js');
    const dlq = await DeadLetters.open(nc, config.subject_prefix, logger);
    if (action === 'list') {
      for (const d of await dlq.list({ eventType: values['event-type'], limit })) process.stdout.write(`${JSON.stringify(d)}\n`);
      return 0;
    }
    const targets = values.all ? (await dlq.list({ eventType: values['event-type'], limit })).map((d) => d.seq) : sequences;
    let failed = 0;
    for (const seq of targets) {
      try {
        process.stdout.write(`${JSON.stringify({ replayed: await dlq.replay(seq, { keep: values.keep }) })}\n`);
      } catch (err) {
        failed++;
        process.stderr.write(`dlq replay ${seq}: ${errorMessage(err)}\n`);
      }
    }
    return failed > 0 ? 1 : 0;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${p}\n`);
      process.exitCode = 2;
    } else if (err instanceof UsageError) {
      process.stderr.write(`stufio-sidecar: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`stufio-sidecar: ${errorMessage(err)}\n`);
      process.exitCode = 1;
    }
  },
);
