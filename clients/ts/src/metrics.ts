/**
 * Metrics providers for handlers (the seed's BaseMetricsProvider), with per-event state in
 * AsyncLocalStorage. Before each event `serve()` runs every provider's `resetMetrics()` in that event's own
 * async context; after the handler returns it merges `getMetrics()` into the response metrics as
 * `<providerName>_<key>` (the handler's own values win on a clash). Concurrent events never share state.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MetricValues } from './response.js';

const eventState = new AsyncLocalStorage<Map<BaseMetricsProvider, Record<string, unknown>>>();

export abstract class BaseMetricsProvider<S extends Record<string, unknown> = Record<string, unknown>> {
  abstract readonly providerName: string;

  /** The state of a new event; override to start counters at zero. */
  initialState(): S {
    return {} as S;
  }

  /** The current event's state, to update in place from the handler (a throwaway object outside an event). */
  get state(): S {
    const store = eventState.getStore();
    if (!store) return this.initialState();
    let s = store.get(this) as S | undefined;
    if (!s) {
      s = this.initialState();
      store.set(this, s);
    }
    return s;
  }

  getMetrics(): MetricValues | Promise<MetricValues> {
    return { ...(this.state as unknown as MetricValues) };
  }

  resetMetrics(): void | Promise<void> {
    eventState.getStore()?.set(this, this.initialState());
  }
}

const registered = new Map<string, BaseMetricsProvider>();

/** Registers a provider for every response from now on; a second provider with the same name is refused. */
export function registerMetricsProvider<P extends BaseMetricsProvider>(provider: P): P {
  const current = registered.get(provider.providerName);
  if (current && current !== provider) throw new Error(`a metrics provider named "${provider.providerName}" is already registered`);
  registered.set(provider.providerName, provider);
  return provider;
}

export function registeredMetricsProviders(): BaseMetricsProvider[] {
  return [...registered.values()];
}

/** Runs one event: providers reset in a fresh context, the handler, then their values collected. */
export async function withEventMetrics<T>(providers: readonly BaseMetricsProvider[], fn: () => Promise<T>): Promise<{ value: T; metrics: MetricValues }> {
  if (providers.length === 0) return { value: await fn(), metrics: {} };
  return eventState.run(new Map(), async () => {
    for (const p of providers) await p.resetMetrics();
    const value = await fn();
    const metrics: MetricValues = {};
    for (const p of providers) {
      for (const [key, v] of Object.entries(await p.getMetrics())) {
        if (v !== undefined && v !== null) metrics[`${p.providerName}_${key}`] = v;
      }
    }
    return { value, metrics };
  });
}
