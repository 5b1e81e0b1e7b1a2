/**
 * The bench handler: a separate process built on @stufio/client `serve()`. For every `bench.*` event it
 * returns a tiny result and one follow-up (`benchout.done`) whose payload echoes the event's phase, index and
 * publish timestamp, plus the handler's own time in µs and how it was called (unary Handle or HandleStream).
 *
 *   node dist/bench/handler.js --address 127.0.0.1:0 [--sleep-us N]
 *
 * Prints `{"listening": "...", "port": N}` on its first stdout line. `--sleep-us` makes every event take at
 * least N µs: a timer for 1 ms and more, a busy wait below that (a timer cannot sleep less than ~1 ms).
 */
import { Server, type ServerDuplexStream, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { EventRouter, HandlerResponse, serve, type EventMessage } from '@stufio/client';
import { exitWhenParentGoes, numFlag, OUT_TYPE, parseFlags, sleep, type FollowUpPayload } from './common.js';

/**
 * serve() hides which RPC delivered an event, and the bench must know (a sidecar run with handler.mode
 * stream that still calls unary Handle must not be reported as a stream figure). The request objects are
 * tagged on their way into serve()'s implementation; the handler function reads the tag.
 */
const via = new WeakMap<object, 'u' | 's'>();
const addService = Server.prototype.addService;
Server.prototype.addService = function (this: Server, service, implementation: UntypedServiceImplementation) {
  const impl = { ...implementation };
  const handle = impl['handle'];
  const handleStream = impl['handleStream'];
  if (typeof handle === 'function' && typeof handleStream === 'function') {
    impl['handle'] = function (call: ServerUnaryCall<EventMessage, unknown>, callback: unknown) {
      via.set(call.request, 'u');
      return (handle as (c: unknown, cb: unknown) => unknown)(call, callback);
    };
    impl['handleStream'] = function (call: ServerDuplexStream<EventMessage, unknown>) {
      // Runs before serve()'s own 'data' listener.
      call.prependListener('data', (event: EventMessage) => via.set(event, 's'));
      return (handleStream as (c: unknown) => unknown)(call);
    };
  }
  return addService.call(this, service, impl);
};

function busyWaitUs(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end) {
    // spin
  }
}

async function main(): Promise<void> {
  exitWhenParentGoes();
  const flags = parseFlags(process.argv.slice(2));
  const address = flags.get('address') ?? '127.0.0.1:0';
  const sleepUs = numFlag(flags, 'sleep-us', 0);

  const handleBench = async (event: EventMessage): Promise<HandlerResponse> => {
    const t0 = performance.now();
    const p = (event.payload ?? {}) as { p?: string; i?: number; t?: number };
    if (sleepUs >= 1000) await sleep(sleepUs / 1000);
    else if (sleepUs > 0) busyWaitUs(sleepUs);
    const payload: FollowUpPayload = {
      p: p.p ?? '',
      i: p.i ?? -1,
      t: p.t ?? 0,
      h: Math.round((performance.now() - t0) * 1000),
      v: via.get(event) ?? 'u',
    };
    return new HandlerResponse({ result: { ok: true }, publish: [{ eventType: OUT_TYPE, entityId: event.entityId, payload }] });
  };

  const server = await serve({ address, handlers: new EventRouter().subscribe('bench.>', handleBench), name: 'bench-handler' });
  process.stdout.write(`${JSON.stringify({ listening: server.address, port: server.port })}\n`);
  const shutdown = () => void server.stop().then(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench handler failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
