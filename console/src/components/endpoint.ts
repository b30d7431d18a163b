import type { Destination } from '../types.js';

/** Where a token's signal goes, in one line: `orders → order.created` (AMQP) or `POST http://…/ship` (HTTP). */
export function endpointText(destination: Destination | undefined): string {
  if (!destination) return '—';
  if (destination.medium === 'amqp') return `${destination.exchange ?? ''} → ${destination.routingKey ?? ''}`;
  if (destination.medium === 'http') return `${destination.method ?? ''} ${destination.url ?? ''}`.trim();
  return '—';
}

export function mediumText(destination: Destination | undefined): string {
  return destination?.medium ?? '—';
}
