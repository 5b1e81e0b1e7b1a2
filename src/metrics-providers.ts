/**
 * Metrics providers — the seed's BaseMetricsProvider / register_metrics_provider, in TypeScript.
 *
 * A provider has a unique `name`, `collect(context)` returning a flat object of values for one event, and
 * optionally `reset()`, called at the start of every event inside that event's async context. Per-event
 * state lives in AsyncLocalStorage (Node's contextvars): `providerState(name, init)` gives the current
 * event's state object, so code running anywhere during the event can add to it.
 *
 * Providers are registered in code (`registerMetricsProvider`) or discovered from the module paths in
 * `metrics.providers`: a module file, or a folder with an index, or a folder with a `metrics/` subfolder
 * (as the seed lays them out). A module may export providers (default export, named exports, or a
 * `providers` array), or call `registerMetricsProvider` itself when imported.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, statSync } from 'node:fs';
import { resolve as resolvePath, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, errorMessage } from './errors.js';
import type { HandledEvent } from './dispatcher.js';

export interface MetricsProvider {
  readonly name: string;
  collect(context: HandledEvent): Record<string, unknown> | Promise<Record<string, unknown>>;
  reset?(): void;
}

interface EventStore {
  state: Map<string, unknown>;
}

// Shared through globalThis: a provider module importing the published package (dist/) and a sidecar
// loaded from another copy must still see one context.
const CONTEXT_KEY = Symbol.for('stufio-sidecar.event-context');
const eventContext: AsyncLocalStorage<EventStore> = ((globalThis as Record<symbol, unknown>)[CONTEXT_KEY] ??= new AsyncLocalStorage<EventStore>()) as AsyncLocalStorage<EventStore>;

/** Runs `fn` as one event's context: providers' per-event state starts empty. */
export function runInEventContext<T>(fn: () => T): T {
  return eventContext.run({ state: new Map() }, fn);
}

/** The current event's state for `name`, created by `init` on first use; undefined outside an event. */
export function providerState<T>(name: string, init: () => T): T | undefined {
  const store = eventContext.getStore();
  if (!store) return undefined;
  let value = store.state.get(name) as T | undefined;
  if (value === undefined) {
    value = init();
    store.state.set(name, value);
  }
  return value;
}

export class MetricsProviderRegistry {
  readonly #providers = new Map<string, MetricsProvider>();

  register(provider: MetricsProvider): void {
    if (!isProvider(provider)) throw new TypeError('a metrics provider needs a name and a collect() function');
    if (this.#providers.has(provider.name)) throw new Error(`metrics provider "${provider.name}" is already registered`);
    this.#providers.set(provider.name, provider);
  }

  get providers(): readonly MetricsProvider[] {
    return [...this.#providers.values()];
  }

  /** Imports each path and registers what it exports (or what it registered globally on import). */
  async discover(paths: readonly string[], cwd = process.cwd()): Promise<void> {
    const problems: string[] = [];
    for (const [i, path] of paths.entries()) {
      const file = resolveModule(resolvePath(cwd, path));
      if (!file) {
        problems.push(`metrics.providers[${i}]: no module at ${path} (a file, a folder with index.js, or a folder with metrics/index.js)`);
        continue;
      }
      const before = globalProviders.length;
      let mod: Record<string, unknown>;
      try {
        mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      } catch (err) {
        problems.push(`metrics.providers[${i}]: importing ${file} failed: ${errorMessage(err)}`);
        continue;
      }
      const found = [...exportedProviders(mod), ...globalProviders.slice(before)];
      if (found.length === 0) problems.push(`metrics.providers[${i}]: ${file} exports no metrics provider`);
      for (const p of found) {
        if (this.#providers.get(p.name) === p) continue;
        try {
          this.register(p);
        } catch (err) {
          problems.push(`metrics.providers[${i}]: ${errorMessage(err)}`);
        }
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
  }
}

/** Providers registered with `registerMetricsProvider` at import time, for discovery to pick up. */
const PROVIDERS_KEY = Symbol.for('stufio-sidecar.registered-providers');
const globalProviders: MetricsProvider[] = ((globalThis as Record<symbol, unknown>)[PROVIDERS_KEY] ??= []) as MetricsProvider[];

/** The seed's @register_metrics_provider: accepts a provider object or a class with a no-arg constructor. */
export function registerMetricsProvider<T extends MetricsProvider | (new () => MetricsProvider)>(provider: T): T {
  globalProviders.push(typeof provider === 'function' ? new provider() : provider);
  return provider;
}

function resolveModule(path: string): string | undefined {
  const candidates = [path, `${path}.js`, `${path}.mjs`, join(path, 'index.js'), join(path, 'index.mjs'), join(path, 'metrics', 'index.js'), join(path, 'metrics', 'index.mjs')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

function exportedProviders(mod: Record<string, unknown>): MetricsProvider[] {
  const out: MetricsProvider[] = [];
  const consider = (v: unknown) => {
    if (isProvider(v)) out.push(v);
    else if (typeof v === 'function' && /^class\s/.test(Function.prototype.toString.call(v))) {
      const proto = (v as { prototype?: { collect?: unknown } }).prototype;
      if (typeof proto?.collect === 'function') {
        const instance = new (v as new () => MetricsProvider)();
        if (isProvider(instance)) out.push(instance);
      }
    }
  };
  for (const [key, value] of Object.entries(mod)) {
    if (key === 'providers' && Array.isArray(value)) value.forEach(consider);
    else consider(value);
  }
  return [...new Set(out)];
}

function isProvider(v: unknown): v is MetricsProvider {
  return typeof v === 'object' && v !== null && typeof (v as MetricsProvider).name === 'string' && (v as MetricsProvider).name !== '' && typeof (v as MetricsProvider).collect === 'function';
}

/** Built in: how the event travelled. */
export const transportProvider: MetricsProvider = {
  name: 'transport',
  collect({ inbound, startedAt }) {
    return {
      subject: inbound.subject,
      delivery: inbound.mode,
      attempt: inbound.attempt,
      redelivered: inbound.attempt > 1,
      stream: inbound.stream ?? '',
      stream_sequence: inbound.streamSequence ?? 0,
      queue_ms: inbound.storedAtMs !== undefined ? Math.max(0, startedAt - inbound.storedAtMs) : 0,
      body_bytes: inbound.data.byteLength,
    };
  },
};

/** Built in: the handler call and what came of it. */
export const handlerCallProvider: MetricsProvider = {
  name: 'handler_call',
  collect({ handlerMs, action, outcome, followUps, response }) {
    return {
      duration_ms: round(handlerMs),
      outcome,
      reason: action.kind === 'ack' ? '' : action.reason,
      followups: followUps.length,
      result_present: response?.result !== undefined,
    };
  },
};

/** Built in: the sidecar process at the end of the event (cheap counters only, no syscalls per event). */
export const processProvider: MetricsProvider = {
  name: 'process',
  collect() {
    const mem = process.memoryUsage();
    return { rss_mb: round(mem.rss / 1048576), heap_used_mb: round(mem.heapUsed / 1048576), uptime_s: Math.round(process.uptime()) };
  },
};

export const BUILT_IN_PROVIDERS: readonly MetricsProvider[] = [transportProvider, handlerCallProvider, processProvider];

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
