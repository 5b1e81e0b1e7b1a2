/**
 * The README's "Writing a handler" section: its TypeScript, Python and Go handlers are the files in
 * test/fixtures/snippets byte for byte, each under 20 lines, and each works as a handler behind a real
 * sidecar and nats-server: a request gets its result and the follow-up is published.
 *
 * The snippets serve on $STUFIO_HANDLER_ADDRESS and print nothing, so they are started here on a unix socket
 * of their own (no free-port race) and the sidecar's start waits until they report SERVING over
 * grpc.health.v1.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { EventClient } from '../src/event-client.js';
import { silentLogger } from '../src/logger.js';
import { cleanup, collect, defer, header, json, natsClient, natsServer, ROOT, sidecar, sidecarConfig, tempDir, waitUntil } from './helpers/index.js';

const SNIPPETS = join(ROOT, 'test/fixtures/snippets');
const FILES = { ts: 'handler.ts', python: 'handler.py', go: 'main.go' } as const;
type Lang = keyof typeof FILES;

afterAll(cleanup);

/** The fenced code blocks of the README's "## Writing a handler" section, by language. */
function readmeBlocks(): { lang: string; code: string }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Writing a handler\n');
  expect(start, 'README has a "## Writing a handler" section').toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

describe('README "Writing a handler"', () => {
  it.each(Object.entries(FILES))('shows the %s handler exactly as in test/fixtures/snippets/%s, in under 20 lines', (lang, file) => {
    const blocks = readmeBlocks().filter((b) => b.lang === lang);
    expect(blocks, `one \`\`\`${lang} block in the section`).toHaveLength(1);
    const text = readFileSync(join(SNIPPETS, file), 'utf8');
    expect(blocks[0]!.code).toBe(text);
    expect(text.trimEnd().split('\n').length).toBeLessThan(20);
  });
});

const goBinary = (): string => {
  const onPath = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'go')).find((p) => existsSync(p));
  const go = onPath ?? ['/usr/local/go/bin/go'].find((p) => existsSync(p));
  if (!go) throw new Error("no Go toolchain (not on PATH, no /usr/local/go/bin/go): install Go and run 'npm run bootstrap'");
  return go;
};

/** The command that runs a snippet; the Go one is built first, inside the client module so its imports resolve. */
async function commandFor(lang: Lang): Promise<string[]> {
  const file = join(SNIPPETS, FILES[lang]);
  if (lang === 'ts') return [process.execPath, '--import', 'tsx', file];
  if (lang === 'python') {
    const python = join(ROOT, '.venv/bin/python');
    if (!existsSync(python)) throw new Error(`${python} is missing: run 'npm run bootstrap', which makes it or says why it cannot`);
    return [python, file];
  }
  const bin = join(tempDir(), 'readme-handler');
  await promisify(execFile)(goBinary(), ['build', '-o', bin, file], { cwd: join(ROOT, 'clients/go'), timeout: 180_000 });
  return [bin];
}

/** Starts a snippet serving on `address`; stopped by cleanup(). Rejects `exited` if it dies, with its stderr. */
function startSnippet(command: string[], address: string): { exited: Promise<never> } {
  const child = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, STUFIO_HANDLER_ADDRESS: address },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await gone;
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`${command.join(' ')} exited (${code ?? signal}): ${stderr}`))));
  exited.catch(() => undefined);
  return { exited };
}

describe.each(Object.keys(FILES) as Lang[])('the README %s handler', (lang) => {
  it('answers a request behind a real sidecar and has its follow-up published', async () => {
    const server = await natsServer();
    const nc = await natsClient(server.url);
    const address = `unix://${join(tempDir(), 'handler.sock')}`;
    const { exited } = startSnippet(await commandFor(lang), address);
    // The sidecar's start waits for the handler to report SERVING (grpc.health.v1).
    const car = await Promise.race([
      exited,
      sidecar(
        sidecarConfig(server.url, address, {
          handler: { address, health_interval_ms: 100, startup_timeout_ms: 30_000 },
          streams: [{ name: 'EVENTS', subjects: ['events.>'], storage: 'memory' }],
          subscriptions: [{ event_type: 'order.created', delivery: 'jetstream', durable: 'readme' }],
        }),
      ),
    ]);
    const notifications = collect(nc, 'events.user.notification');
    const client = await EventClient.create(nc, { prefix: 'events', logger: silentLogger() });
    const order = { user_id: 'u-1', items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }] };
    const reply = await client.request({ eventType: 'order.created', entityId: 'cust-1', correlationId: 'corr-1', payload: order }, 15_000);
    expect(reply.error).toBeUndefined();
    expect(reply.result).toEqual({ order_id: 'ord-cust-1' });

    await waitUntil(() => notifications.messages.length === 1, 10_000, 'the follow-up');
    const m = notifications.messages[0]!;
    expect(json(m)).toEqual({ message: 'Order received' });
    expect(header(m, 'ce-type')).toBe('user.notification');
    expect(header(m, 'ce-subject')).toBe('u-1');
    expect(header(m, 'ce-correlationid')).toBe('corr-1');
    expect(header(m, 'ce-causationid')).toBe(reply.eventId);

    const metrics = await (await fetch(`http://127.0.0.1:${car.httpAddress!.port}/metrics`)).text();
    expect(metrics).toContain('stufio_handler_items_count_sum{event_type="order.created"} 2');
    expect(metrics).toContain('stufio_handler_success_total{event_type="order.created",value="true"} 1');
    notifications.stop();
  });
});
