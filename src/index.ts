/** The public API of the stufio-sidecar package, for embedding the sidecar and writing metrics providers. */
export { Sidecar, type SidecarState, type SidecarOptions } from './sidecar.js';
export { loadConfig, parseConfig, redactConfig, type SidecarConfig, type SubscriptionConfig } from './config.js';
export { ConfigError, MalformedEventError, InvalidResponseError, HandlerCallError, PublishError, ServerFeatureError } from './errors.js';
export { EventClient, type NewEvent, type RequestReply } from './event-client.js';
export {
  MetricsProviderRegistry,
  registerMetricsProvider,
  providerState,
  type MetricsProvider,
} from './metrics-providers.js';
export type { MetricsRecord } from './metrics-records.js';
export type { HandledEvent } from './dispatcher.js';
export { decide, type Action, type HandlingResult, type Outcome } from './outcome.js';
export * as proto from './gen/stufio/events/v1/handler.js';
