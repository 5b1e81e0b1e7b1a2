/**
 * The one place tests start things: nats-server (through src/local-nats.ts), handler processes and
 * sidecars. Everything started is registered and stopped by `cleanup()`, which every test file calls in
 * afterEach/afterAll, so no process outlives its test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { parseConfig, type SidecarConfig } from '../../src/config.js';
import { silentLogger, createLogger } from '../../src/logger.js';
import { Sidecar } from '../../src/sidecar.js';
import { startNatsServer, type NatsServerHandle, type NatsServerOptions } from '../../src/local-nats.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist/src/cli.js');

const cleanups: (() => Promise<void> | void)[] = [];

/** Registers something to undo in `cleanup()` (last registered, first undone). */
export function defer(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export async function cleanup(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch {
      // Keep undoing the rest: one failed stop must not leave other processes behind.
    }
  }
}

export async function natsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const server = await startNatsServer({ jetstream: true, ...opts });
  defer(() => server.stop());
  return server;
}

export async function natsClient(url: string | string[]): Promise<NatsConnection> {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  defer(() => nc.close());
  return nc;
}

/** A JetStream manager; its account-info request is retried while a cluster elects a leader. */
export async function manager(nc: NatsConnection, deadlineMs = 20_000): Promise<JetStreamManager> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await jetstreamManager(nc);
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export interface HandlerProcess {
  child: ChildProcess;
  address: string;
  port: number;
  /** Lines the handler printed after its "listening" line (the test handler logs each call as JSON). */
  calls: Record<string, unknown>[];
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts a handler process: `test/fixtures/test-handler.ts` by default (TypeScript through tsx), or any
 * command that prints `{"listening": ADDRESS}` as its first stdout line.
 */
export async function handlerProcess(options: { command?: string[]; address?: string; env?: Record<string, string> } = {}): Promise<HandlerProcess> {
  const address = options.address ?? '127.0.0.1:0';
  const command = options.command ?? [process.execPath, '--import', 'tsx', join(ROOT, 'test/fixtures/test-handler.ts')];
  const child = spawn(command[0]!, [...command.slice(1), '--address', address], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  const calls: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout! });
  const listening = await new Promise<{ listening: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`handler did not start within 20 s: ${stderr}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`handler exited with ${code}: ${stderr}`)));
    let first = true;
    lines.on('line', (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (first) {
        first = false;
        clearTimeout(timer);
        resolve(parsed as { listening: string; port: number });
      } else {
        calls.push(parsed);
      }
    });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  defer(() => stop('SIGKILL'));
  return { child, address: listening.listening, port: listening.port, calls, stop };
}

/** A validated config with test-friendly defaults (fast health polling, ephemeral HTTP port). */
export function sidecarConfig(natsUrl: string | string[], handlerAddress: string, overrides: Record<string, unknown> = {}): SidecarConfig {
  const { nats, handler, http, ...rest } = overrides as { nats?: object; handler?: object; http?: object };
  return parseConfig({
    nats: { servers: Array.isArray(natsUrl) ? natsUrl : [natsUrl], name: 'test-sidecar', connect_timeout_ms: 10_000, ...nats },
    handler: { address: handlerAddress, timeout_ms: 5000, health_interval_ms: 100, ...handler },
    http: { listen: '127.0.0.1:0', ...http },
    shutdown: { grace_ms: 5000 },
    ...rest,
  });
}

export async function sidecar(config: SidecarConfig, verbose = process.env.STUFIO_TEST_LOGS === '1'): Promise<Sidecar> {
  const s = new Sidecar(config, { logger: verbose ? createLogger({ level: 'debug' }) : silentLogger() });
  defer(() => s.stop());
  await s.start();
  return s;
}

/** Collects every message on `subject` (core subscription) for later assertions. */
export function collect(nc: NatsConnection, subject: string): { messages: Msg[]; stop(): void } {
  const messages: Msg[] = [];
  const sub = nc.subscribe(subject, { callback: (_err, m) => void messages.push(m) });
  return { messages, stop: () => sub.unsubscribe() };
}

/**
 * Polls `cond` until it holds. A check that throws (a JetStream API request timing out while a cluster
 * elects a leader) counts as "not yet"; the last such error is named if time runs out.
 */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const detail = lastError instanceof Error ? ` (last check failed: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stufio-test-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function writeTemp(name: string, text: string): string {
  const path = join(tempDir(), name);
  writeFileSync(path, text);
  return path;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stufio-sidecar ${args.join(' ')} timed out: ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts the CLI as a long-running process (run); returns it with captured output. */
export function spawnCli(args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, output: () => output, exited };
}

export function header(m: Msg, name: string): string | undefined {
  if (!m.headers) return undefined;
  for (const k of m.headers.keys()) if (k.toLowerCase() === name.toLowerCase()) return m.headers.get(k);
  return undefined;
}

export function json(m: { data: Uint8Array }): unknown {
  return JSON.parse(Buffer.from(m.data).toString('utf8'));
}

/** A free TCP port on 127.0.0.1 (bind 0, read, close): for a process that must come back on the same port. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as import('node:net').AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Publishes to JetStream, retrying through outages: a producer that must not lose its own events. */
export async function publishDurably(js: import('@nats-io/jetstream').JetStreamClient, subject: string, data: string, msgID: string, deadlineMs = 60_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    try {
      await js.publish(subject, data, { msgID, timeout: 2000 });
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function natsCluster(size = 3): Promise<import('../../src/local-nats.js').NatsCluster> {
  const { startNatsCluster } = await import('../../src/local-nats.js');
  const cluster = await startNatsCluster(size);
  defer(() => cluster.stop());
  return cluster;
}
