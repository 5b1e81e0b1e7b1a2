/**
 * The seed's order example as a stufio handler in TypeScript: `order.created` returns the order id as the
 * result, reports metrics, and publishes `order.fulfillment` and `user.notification` with the correlation
 * id kept. Run: node dist/examples/order-handler.js --address 127.0.0.1:50051
 */
import { EventRouter, HandlerResponse, PermanentError, serve, type EventMessage } from '@stufio/client';

interface OrderPayload {
  order_id?: string;
  user_id: string;
  total: number;
  items: { sku: string; qty: number }[];
  shipping_address?: string;
}

/** Deterministic, so the same event gives the same order id in every language's example. */
export function orderIdFor(event: EventMessage): string {
  return `ord-${event.entityId || event.eventId.slice(0, 8)}`;
}

export async function handleOrderCreated(event: EventMessage): Promise<HandlerResponse> {
  const order = event.payload as OrderPayload | undefined;
  if (!order || typeof order !== 'object' || !Array.isArray(order.items)) {
    throw new PermanentError('order.created needs a JSON payload with items');
  }
  const orderId = orderIdFor(event);
  try {
    return new HandlerResponse({
      result: { order_id: orderId },
      metrics: { success: true, order_total: order.total, items_count: order.items.length },
      publish: [
        {
          eventType: 'order.fulfillment',
          entityId: orderId,
          payload: { order_id: orderId, shipping_address: order.shipping_address ?? '' },
          correlationId: event.correlationId,
        },
        {
          eventType: 'user.notification',
          entityId: order.user_id,
          payload: { user_id: order.user_id, message: `Order #${orderId} received` },
          correlationId: event.correlationId,
        },
      ],
    });
  } catch (err) {
    // The seed's pattern: report the failure in the metrics; the sidecar acks and counts it.
    return new HandlerResponse().addMetrics({ success: false, error: String(err) });
  }
}

/** A request/reply flavour on core NATS: price an order without storing anything. */
export async function handleOrderQuote(event: EventMessage): Promise<HandlerResponse> {
  const order = event.payload as OrderPayload | undefined;
  if (!order || typeof order.total !== 'number') throw new PermanentError('order.quote needs a JSON payload with a numeric total');
  const total = Math.round(order.total * 1.2 * 100) / 100;
  return new HandlerResponse({
    result: { total_with_tax: total },
    metrics: { success: true, order_total: order.total },
    publish: [{ eventType: 'order.quoted', entityId: event.entityId, payload: { total_with_tax: total }, correlationId: event.correlationId }],
  });
}

export const router = new EventRouter()
  .subscribe('order.created', handleOrderCreated, { delivery: 'jetstream', durable: 'order-handler' })
  .subscribe('order.quote', handleOrderQuote, { delivery: 'core', queueGroup: 'order-handler' });

async function main(): Promise<void> {
  const i = process.argv.indexOf('--address');
  const address = i > 0 ? process.argv[i + 1]! : (process.env.STUFIO_HANDLER_ADDRESS ?? '127.0.0.1:50051');
  const server = await serve({ address, handlers: router, name: 'order-handler' });
  // The parent (demo, tests) reads this line to learn the port when it asked for port 0.
  process.stdout.write(`${JSON.stringify({ listening: server.address, port: server.port })}\n`);
  const shutdown = () => void server.stop().then(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
