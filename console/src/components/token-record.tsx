import type { ComponentChildren } from 'preact';
import { duration, instant } from '../format.js';
import { conversationHref, tokenHref } from '../routes.js';
import type { Destination, TokenView } from '../types.js';
import { StatusBadge } from './status-badge.js';

type TimeField = 'mintedAt' | 'dispatchedAt' | 'expiresAt' | 'consumedAt' | 'dueAt';

/**
 * Every field of a token as the API shows it, each under its own name; a field the token lacks shows "—". There is
 * no payload field: the API never returns a payload, only its fingerprint.
 */
export function TokenRecord({
  token,
  statusTestId,
  parentOutside,
}: {
  token: TokenView;
  statusTestId?: string;
  /** The parent is kept by another system: there is no page of it here to link to. */
  parentOutside?: boolean;
}) {
  const time = (field: TimeField) => {
    const value = token[field];
    return value ? <Instant iso={value} /> : undefined;
  };
  return (
    <dl class="record" aria-label="Token record">
      <Field name="id">
        <code>{token.id}</code>
      </Field>
      <Field name="status">
        <StatusBadge status={token.status} testId={statusTestId} />
      </Field>
      <Field name="conversationId">
        <a href={conversationHref(token.conversationId)}>
          <code>{token.conversationId}</code>
        </a>
      </Field>
      <Field name="parentId">
        {token.parentId &&
          (parentOutside ? (
            <>
              <code>{token.parentId}</code> <span class="muted">(kept by another system)</span>
            </>
          ) : (
            <a href={tokenHref(token.parentId)}>
              <code>{token.parentId}</code>
            </a>
          ))}
      </Field>
      <Field name="mintedBy">{token.mintedBy}</Field>
      <Field name="mintedAt">{time('mintedAt')}</Field>
      <Field name="destination">
        {token.destination && <DestinationRecord destination={token.destination} />}
      </Field>
      <Field name="fingerprint">{token.fingerprint && <code class="wrap">{token.fingerprint}</code>}</Field>
      <Field name="dispatchedAt">{time('dispatchedAt')}</Field>
      <Field name="expiresAt">{time('expiresAt')}</Field>
      <Field name="consumedAt">{time('consumedAt')}</Field>
      <Field name="consumedBy">{token.consumedBy}</Field>
      <Field name="dueAt">{time('dueAt')}</Field>
      <Field name="attempts">{token.attempts}</Field>
    </dl>
  );
}

function Field({ name, children }: { name: string; children: ComponentChildren }) {
  const empty = children === undefined || children === null || children === '' || children === false;
  return (
    <div class="record-field">
      <dt>{name}</dt>
      <dd>{empty ? <span class="muted">—</span> : children}</dd>
    </div>
  );
}

function DestinationRecord({ destination }: { destination: Destination }) {
  const rows: Array<[string, string | undefined]> = [
    ['medium', destination.medium],
    ['exchange', destination.exchange],
    ['routingKey', destination.routingKey],
    ['method', destination.method],
    ['url', destination.url],
    ['issuer.url', destination.issuer?.url],
    ['issuer.credential', destination.issuer?.credential],
  ];
  return (
    <dl class="record record-nested">
      {rows
        .filter(([, value]) => value !== undefined)
        .map(([name, value]) => (
          <div class="record-field" key={name}>
            <dt>{name}</dt>
            <dd>
              <code class="wrap">{value}</code>
            </dd>
          </div>
        ))}
    </dl>
  );
}

/** An instant in local time, with how long ago it was (or how soon it will be). */
export function Instant({ iso }: { iso: string }) {
  const offset = Date.parse(iso) - Date.now();
  const relative = offset <= 0 ? `${duration(-offset)} ago` : `in ${duration(offset)}`;
  return (
    <>
      <time dateTime={iso}>{instant(iso)}</time> <span class="muted">({relative})</span>
    </>
  );
}
