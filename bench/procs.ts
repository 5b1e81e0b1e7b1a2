/**
 * Child processes of the benchmark: spawned with node, tracked, read line by line, always stopped (SIGTERM,
 * then SIGKILL after a grace period). `stopAll()` is what the orchestrator runs on exit, error and SIGINT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { RESULT_MARK } from './common.js';

const live = new Set<Proc>();
const STDERR_KEEP = 16 * 1024;

export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #stderr = '';
  #lines: string[] = [];
  #lineWaiters: (() => void)[] = [];

  constructor(
    readonly name: string,
    script: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; echoStderr?: boolean } = {},
  ) {
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], {
      // stdin stays open: the bench's own children exit when it closes (the orchestrator died).
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
        this.#notify();
      });
      this.child.once('error', (err) => {
        this.#stderr += `spawn failed: ${err.message}\n`;
        this.exit = { code: -1, signal: null };
        live.delete(this);
        resolve(this.exit);
        this.#notify();
      });
    });
    this.child.stdin?.on('error', () => {});
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.#lines.push(line);
      this.#notify();
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      if (opts.echoStderr) process.stderr.write(chunk);
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_KEEP);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  stderrTail(chars = 1500): string {
    return this.#stderr.slice(-chars).trim();
  }

  #notify(): void {
    for (const w of this.#lineWaiters.splice(0)) w();
  }

  /** The first stdout line that `match` accepts; rejects on exit or timeout. */
  async line(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.#lines.length; seen++) if (match(this.#lines[seen]!)) return this.#lines[seen]!;
      if (this.exit) throw new Error(`${this.name} exited (${describeExit(this.exit)}) before ${what}${this.#stderrNote()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no ${what} within ${Math.round(timeoutMs / 1000)} s${this.#stderrNote()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#lineWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The `@@result {...}` line a bench child prints. */
  async result<T>(timeoutMs: number): Promise<T> {
    const line = await this.line((l) => l.startsWith(RESULT_MARK), timeoutMs, 'result');
    return JSON.parse(line.slice(RESULT_MARK.length)) as T;
  }

  #stderrNote(): string {
    const tail = this.stderrTail(800);
    return tail ? `; stderr: ${tail}` : '';
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!this.exit) this.child.kill('SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function describeExit(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** Synchronous last resort (the 'exit' hook): no waiting possible. */
export function killAllNow(): void {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A port free right now on 127.0.0.1 (for the sidecar's HTTP listener, whose /readyz we poll). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
