import type { ComponentChildren } from 'preact';
import { Unreachable } from '../api.js';
import { ProblemAlert } from '../components/problem-alert.js';
import { RatesChart } from '../components/rates-chart.js';
import { StatusBadge } from '../components/status-badge.js';
import { Instant } from '../components/token-record.js';
import { clockTime, duration } from '../format.js';
import { href } from '../routes.js';
import { useSession } from '../session.js';
import { STATUS_MEANING } from '../statuses.js';
import { STATUSES, type TokenStatus } from '../types.js';

/** Statuses a token can be stuck in, linked to the stuck list filtered on them. */
const LISTABLE: ReadonlySet<TokenStatus> = new Set([
  'pending',
  'issued',
  'expired',
  'revoked',
  'scheduled',
  'dispatched',
]);

/** The gateway at a glance, refreshed by the session's poll every 2 s. */
export function OverviewPage({ error }: { error: unknown }) {
  const { overview } = useSession();
  return (
    <>
      <div class="page-head">
        <h1 id="main-heading" tabIndex={-1}>
          Overview
        </h1>
        {overview && (
          <p class="muted updated">
            Updated{' '}
            <time data-testid="updated-at" dateTime={overview.at}>
              {clockTime(overview.at)}
            </time>{' '}
            · every 2 s
          </p>
        )}
      </div>
      {error instanceof Unreachable
        ? overview && (
            <p class="note">These figures are from {clockTime(overview.at)}: the gateway is not answering.</p>
          )
        : error !== undefined && <ProblemAlert error={error} />}
      {!overview ? (
        <p class="muted">Loading…</p>
      ) : (
        <>
          <section class="cards" aria-label="Key figures">
            <Card label="In flight" testId="in-flight" value={String(overview.inFlight)}>
              issued, pending, dispatched or scheduled
            </Card>
            <Card
              label="Oldest in flight"
              testId="oldest-age"
              value={overview.oldestInFlightAgeMs === null ? 'none' : duration(overview.oldestInFlightAgeMs)}
            >
              age of the oldest token in flight
            </Card>
            <Card label="Duplicates" testId="total-duplicates" value={String(overview.totals.duplicates)}>
              dropped since start
            </Card>
            <Card
              label="Dead-lettered"
              testId="total-dead-lettered"
              value={String(overview.totals.deadLettered)}
            >
              since start
            </Card>
            <Card
              label="Redispatched"
              testId="relay-redispatched"
              value={String(overview.relay.redispatched)}
            >
              by the relay since start
            </Card>
          </section>

          <div class="columns">
            <section aria-labelledby="statuses-heading">
              <h2 id="statuses-heading">Tokens by status</h2>
              <table class="table statuses">
                <thead>
                  <tr>
                    <th scope="col">Status</th>
                    <th scope="col" class="number">
                      Tokens
                    </th>
                    <th scope="col">Meaning</th>
                  </tr>
                </thead>
                <tbody>
                  {STATUSES.map((status) => (
                    <tr key={status}>
                      <th scope="row">
                        {LISTABLE.has(status) ? (
                          <a
                            href={href({ view: 'stuck', filter: { status } })}
                            aria-label={`List ${status} tokens`}
                          >
                            <StatusBadge status={status} />
                          </a>
                        ) : (
                          <StatusBadge status={status} />
                        )}
                      </th>
                      <td class="number" data-testid={`count-${status}`}>
                        {overview.statuses[status]}
                      </td>
                      <td class="muted">{STATUS_MEANING[status]}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>

            <section aria-labelledby="relay-heading">
              <h2 id="relay-heading">Relay</h2>
              <dl class="record">
                <Pair name="State">{overview.relay.enabled ? 'running' : 'off'}</Pair>
                <Pair name="Redispatch delay">{duration(overview.relay.delayMs)}</Pair>
                <Pair name="Redispatched">{overview.relay.redispatched}</Pair>
                <Pair name="Given up">{overview.relay.givenUp}</Pair>
                <Pair name="Last pass">
                  {overview.relay.lastPassAt ? <Instant iso={overview.relay.lastPassAt} /> : 'none yet'}
                </Pair>
              </dl>
              <h2 id="totals-heading">Since start</h2>
              <p class="muted">
                Counted since <Instant iso={overview.since} />
              </p>
              <dl class="record" aria-labelledby="totals-heading">
                <Pair name="Minted">{overview.totals.minted}</Pair>
                <Pair name="Consumed">{overview.totals.consumed}</Pair>
                <Pair name="Duplicates">{overview.totals.duplicates}</Pair>
                <Pair name="Dead-lettered">{overview.totals.deadLettered}</Pair>
                <Pair name="Redispatched">{overview.totals.redispatched}</Pair>
                <Pair name="Dispatch failures">{overview.totals.dispatchFailures}</Pair>
              </dl>
            </section>
          </div>

          <section aria-labelledby="rates-heading">
            <h2 id="rates-heading">Rates</h2>
            <RatesChart points={overview.rates.points} intervalSeconds={overview.rates.intervalSeconds} />
          </section>
        </>
      )}
    </>
  );
}

function Card({
  label,
  value,
  testId,
  children,
}: {
  label: string;
  value: string;
  testId: string;
  children: string;
}) {
  return (
    <div class="card">
      <p class="card-label">{label}</p>
      <p class="card-value" data-testid={testId}>
        {value}
      </p>
      <p class="card-note muted">{children}</p>
    </div>
  );
}

function Pair({ name, children }: { name: string; children: ComponentChildren }) {
  return (
    <div class="record-field">
      <dt>{name}</dt>
      <dd>{children}</dd>
    </div>
  );
}
