import type { Registry } from 'prom-client';
import type { SignalSender } from '../core/dispatcher.js';
import type { Observer } from '../core/observer.js';
import type { TokenStore } from '../core/store.js';
import type { ApiKeysConfig, BridgesConfig } from './config/index.js';
import type { GatewayLogger } from './logging.js';
import type { OverviewReader } from './overview.js';

/** Something that can tell whether the broker answers (the AMQP connection). */
export interface BrokerProbe {
  ping(): Promise<void>;
}

/** The relay, as the gateway uses it: an operator's "redispatch" goes through it; the overview shows its figures. */
export interface RelayTrigger {
  /** Sends one pending token now, whatever its age (Relay.redispatch). */
  redispatch(id: string): Promise<unknown>;
  /** How long a token stays pending before the relay sends it again. */
  readonly delayMs?: number;
  readonly stats?: { readonly givenUp: number; readonly lastPassAt?: number };
}

/** Shared by the process wrapper and the app: readiness turns false as soon as shutdown starts. */
export interface Lifecycle {
  draining: boolean;
}

/** The parts of the configuration the HTTP app needs (the rest is the process wrapper's business). */
export interface AppConfig {
  apiKeys: ApiKeysConfig;
  bridges: BridgesConfig;
  bodyLimitBytes: number;
  defaultTokenTtlMs: number;
  /**
   * Prefix of every problem `type` (TOLLGATE_PROBLEM_BASE): a deployment's own docs, used verbatim, e.g.
   * https://docs.example.com/tollgate/problems/. Default "/problems/", which the gateway itself serves.
   */
  problemBase?: string;
  /** The web console at /console (TOLLGATE_CONSOLE_ENABLED); absent: served. */
  console?: { enabled: boolean };
}

/** What every route module gets (as its plugin options). */
export interface GatewayContext {
  store: TokenStore;
  /** Publishes ingress signals with broker confirms; null when the gateway runs without a broker. */
  publisher: SignalSender | null;
  broker: BrokerProbe | null;
  relay: RelayTrigger | null;
  observer: Required<Observer>;
  logger: GatewayLogger;
  clock: () => number;
  config: AppConfig;
  lifecycle: Lifecycle;
  registry: Registry;
  overview: OverviewReader;
}
