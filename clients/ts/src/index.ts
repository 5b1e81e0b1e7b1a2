/**
 * @stufio/client — write stufio event handlers in TypeScript.
 *
 *   const router = new EventRouter().subscribe('order.created', async (event) =>
 *     HandlerResponse.withResult({ ok: true }).addMetrics({ success: true }));
 *   await serve({ address: '127.0.0.1:50051', handlers: router });
 *
 * Outside a handler, `connectPublisher()` publishes events (or requests a handler's result) through the
 * sidecar's EventPublisher service.
 */
export { serve, DEFAULT_ADDRESS, type ServeOptions, type RunningServer } from './serve.js';
export { EventRouter, type HandlerFn, type SubscribeOptions } from './router.js';
export { HandlerResponse, normaliseReturn, type HandlerReturn, type MetricValues, type PublishEvent } from './response.js';
export { RetryableError, PermanentError, statusForError } from './errors.js';
export { BaseMetricsProvider, registerMetricsProvider, registeredMetricsProviders } from './metrics.js';
export { connectPublisher, PUBLISHER_ADDRESS_ENV, type EventPublisher, type PublishOptions, type PublishResult, type RequestResult } from './publisher.js';
export * as pb from './gen/stufio/events/v1/handler.js';
export type { EventMessage } from './gen/stufio/events/v1/handler.js';
