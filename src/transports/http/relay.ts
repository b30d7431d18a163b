import { Dispatcher } from '../../core/dispatcher.js';
import type { Logger, Observer } from '../../core/observer.js';
import { Relay, type RelayOptions } from '../../core/relay.js';
import type { TokenStore } from '../../core/store.js';
import { HttpSignalSender } from './client.js';

export interface HttpRelayOptions extends Omit<RelayOptions, 'dispatcher' | 'medium'> {
  store: TokenStore;
  sender?: HttpSignalSender;
  observers?: readonly Observer[];
  logger?: Logger;
}

/** A relay that re-sends only HTTP tokens left pending, through its own dispatcher and HTTP sender. */
export function createHttpRelay(options: HttpRelayOptions): {
  relay: Relay;
  dispatcher: Dispatcher;
  sender: HttpSignalSender;
} {
  const { sender = new HttpSignalSender(), observers, ...relayOptions } = options;
  const dispatcher = new Dispatcher({
    store: options.store,
    senders: [sender],
    ...(observers ? { observers } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const relay = new Relay({ ...relayOptions, dispatcher, medium: 'http' });
  return { relay, dispatcher, sender };
}
