import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Server, ServerCredentials, status, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { HealthCheckResponse_ServingStatus, HealthService, type HealthCheckRequest, type HealthCheckResponse } from './gen/grpc/health/v1/health.js';
import { EventHandlerService, type EventMessage, type HandlerDescription, type HandlerResponse as PbHandlerResponse } from './gen/stufio/events/v1/handler.js';
import { statusForError } from './errors.js';
import { normaliseReturn } from './response.js';
import { EventRouter, type HandlerFn } from './router.js';
import { registeredMetricsProviders, withEventMetrics, type BaseMetricsProvider } from './metrics.js';

function isJsonContentType(contentType: string): boolean {
  const base = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return base === 'application/json' || base.endsWith('+json');
}

/** Where a handler serves when given no address and `$STUFIO_HANDLER_ADDRESS` is unset: a socket shared with the sidecar. */
export const DEFAULT_ADDRESS = 'unix:///var/run/stufio/handler.sock';

export interface ServeOptions {
  /**
   * `host:port`, `:port` or `unix:///path.sock`; port 0 picks a free one. Default `$STUFIO_HANDLER_ADDRESS`,
   * else DEFAULT_ADDRESS (as the Python and Go clients).
   */
  address?: string;
  handlers: Record<string, HandlerFn> | EventRouter;
  /** Reported through Describe; names the durable of declared subscriptions. */
  name?: string;
  version?: string;
  /** Providers whose values join every response's metrics; default: those registered with registerMetricsProvider. */
  metricsProviders?: readonly BaseMetricsProvider[];
}

export interface RunningServer {
  /** The bound port (0 for a unix socket). */
  port: number;
  address: string;
  /** Switches grpc.health.v1 to NOT_SERVING (the sidecar pauses) or back. */
  setServing(serving: boolean): void;
  /** Graceful stop: health NOT_SERVING, in-flight calls finish, then the server closes. */
  stop(): Promise<void>;
}

/** Hosts the handlers as EventHandler with grpc.health.v1 and Describe. */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const router = EventRouter.from(options.handlers);
  let serving = true;
  const watchers = new Set<ServerDuplexStream<HealthCheckRequest, HealthCheckResponse> | { write(r: HealthCheckResponse): void }>();
  const healthStatus = (): HealthCheckResponse => ({
    status: serving ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING,
  });

  const providers = options.metricsProviders ?? registeredMetricsProviders();
  const run = async (event: EventMessage): Promise<PbHandlerResponse> => {
    const fn = router.match(event.eventType);
    if (!fn) throw Object.assign(new Error(`no handler for event type ${event.eventType}`), { code: status.UNIMPLEMENTED });
    // A sidecar with handler.decode_payload: false sends the raw body only; parse it here, on demand.
    // A body without a content type is JSON when it parses (as the sidecar itself does for plain messages).
    if (event.payload === undefined && event.data.length > 0 && (event.contentType === '' || isJsonContentType(event.contentType))) {
      try {
        event.payload = JSON.parse(Buffer.from(event.data).toString('utf8'));
      } catch {
        if (event.contentType !== '') throw Object.assign(new Error('body declared as JSON is not valid JSON'), { code: status.INVALID_ARGUMENT });
      }
    }
    const { value, metrics } = await withEventMetrics(providers, async () => normaliseReturn(await fn(event)));
    // The handler's own values win over a provider's of the same name.
    for (const [k, v] of Object.entries(metrics)) if (!(k in value.metrics)) value.metrics[k] = v;
    return value.toProto();
  };

  const server = new Server();
  server.addService(EventHandlerService, {
    handle(call: ServerUnaryCall<EventMessage, PbHandlerResponse>, callback: sendUnaryData<PbHandlerResponse>) {
      run(call.request).then(
        (response) => callback(null, response),
        (err: unknown) => callback({ code: codeOf(err), details: messageOf(err) }),
      );
    },
    handleStream(call: ServerDuplexStream<EventMessage, PbHandlerResponse>) {
      call.on('data', (event: EventMessage) => {
        run(event).then(
          (response) => call.write({ ...response, eventId: event.eventId }),
          // A stream message has no status of its own: the code travels in error_code, and the sidecar
          // treats it exactly as a unary call that failed with it.
          (err: unknown) => {
            call.write({ result: undefined, metrics: undefined, publish: [], disposition: 0, retryDelayMs: 0, eventId: event.eventId, errorMessage: messageOf(err), errorCode: codeOf(err) });
          },
        );
      });
      call.on('end', () => call.end());
    },
    describe(_call: ServerUnaryCall<unknown, HandlerDescription>, callback: sendUnaryData<HandlerDescription>) {
      callback(null, { name: options.name ?? 'ts-handler', version: options.version ?? '', subscriptions: router.declarations(), sdk: 'typescript' });
    },
  });
  server.addService(HealthService, {
    check(_call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: sendUnaryData<HealthCheckResponse>) {
      callback(null, healthStatus());
    },
    watch(call: ServerDuplexStream<HealthCheckRequest, HealthCheckResponse>) {
      watchers.add(call);
      call.write(healthStatus());
      call.on('cancelled', () => watchers.delete(call));
    },
  });

  const address = options.address || process.env.STUFIO_HANDLER_ADDRESS || DEFAULT_ADDRESS;
  const target = /^:\d+$/.test(address) ? `0.0.0.0${address}` : address;
  // The socket's directory may not exist yet (a fresh emptyDir, a local run): create it, as Python and Go do.
  if (target.startsWith('unix://')) mkdirSync(dirname(target.slice('unix://'.length)), { recursive: true });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(target, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });

  let stopping: Promise<void> | undefined;
  return {
    port,
    address: target.startsWith('unix:') ? target : target.replace(/:\d+$/, `:${port}`),
    setServing(next) {
      serving = next;
      for (const w of watchers) w.write(healthStatus());
    },
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        serving = false;
        server.tryShutdown(() => resolve());
      });
      return stopping;
    },
  };
}

function codeOf(err: unknown): status {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : statusForError(err);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
