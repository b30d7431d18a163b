import type { CancellationReason, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import type { CommitFailure, CommitRequest, CommitResult } from '../../core/store.js';
import { PerTurn } from '../per-turn.js';
import { classifyCommitError, isTransientError, type OwnActionLabel, sdkError } from './failures.js';
import { DYNAMODB_LIMITS, type SizedWrite } from './limits.js';

/** One commit's transaction, as the store built and checked it, waiting for its group. */
export interface HopTransaction {
  /** In the order classifyCommitError reads the cancellation reasons. */
  actions: ReadonlyArray<SizedWrite & { write: TransactWriteItem }>;
  /** What the actions write, one identity per item: two commits that share one never share a group. */
  items: readonly string[];
  request: CommitRequest;
  own: readonly OwnActionLabel[];
}

interface Waiting extends HopTransaction {
  bytes: number;
  resolve: (result: CommitResult) => void;
}

/** Sends one TransactWriteItems; rejects with the SDK's error. */
export type SendTransaction = (items: TransactWriteItem[]) => Promise<unknown>;

/**
 * Group commit for DynamoDB: the commits asked for in one turn of the event loop (the deliveries of one batch,
 * the requests that arrived together) go out as one TransactWriteItems, as many as fit DynamoDB's limits
 * (100 actions, 4 MB) and touch distinct items. A request costs far more than an action: DynamoDB Local took
 * 4 to 5 times as many hops a second at 16 hops a transaction as at one, and the SDK spent a tenth of the CPU.
 *
 * A transaction is all or nothing, so a group changes what each commit writes not at all. When DynamoDB cancels
 * a group, its cancellation reasons name the actions that failed: their commits get the answer a transaction of
 * their own would have had, read from their slice of the reasons, and the others are sent again, without them.
 * Any other failure of a group: if it may pass (throttling, a lost answer), every commit in it hears "transient"
 * and the processor sends it again, as it does a single commit's (a commit that did land is then recognised by
 * its commit id); if not, each commit is sent alone, so that one bad request fails only itself.
 */
export class CommitGroups {
  private readonly queued = new PerTurn<Waiting>((waiting) => {
    for (const group of pack(waiting)) this.track(this.sendGroup(group));
  });
  private readonly sending = new Set<Promise<void>>();

  /** `grouped` false: each commit is sent at once, on its own. */
  constructor(
    private readonly send: SendTransaction,
    private readonly grouped = true,
  ) {}

  submit(hop: HopTransaction): Promise<CommitResult> {
    const bytes = hop.actions.reduce((sum, action) => sum + action.bytes, 0);
    return new Promise<CommitResult>((resolve) => {
      if (!this.grouped) {
        this.track(this.sendAlone({ ...hop, bytes, resolve }));
        return;
      }
      this.queued.add({ ...hop, bytes, resolve });
    });
  }

  /** Sends what is queued now and waits until every commit asked for has its answer (the store's close). */
  async drain(): Promise<void> {
    this.queued.flush();
    while (this.sending.size > 0) await Promise.all([...this.sending]);
  }

  private track(sent: Promise<void>): void {
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  private async sendGroup(group: Waiting[]): Promise<void> {
    if (group.length === 1) return this.sendAlone(group[0]!);
    try {
      await this.send(group.flatMap((hop) => hop.actions.map((action) => action.write)));
      for (const hop of group) hop.resolve({ ok: true });
      return;
    } catch (error) {
      const reasons = cancellationReasons(error, group);
      if (reasons === undefined) {
        if (isTransientError(error)) {
          const failure: CommitFailure = { kind: 'transient', cause: error };
          for (const hop of group) hop.resolve({ ok: false, failure });
        } else {
          await Promise.all(group.map((hop) => this.sendAlone(hop)));
        }
        return;
      }
      const innocent: Waiting[] = [];
      for (const [i, hop] of group.entries()) {
        const own = reasons[i]!;
        if (own.every(passed)) innocent.push(hop);
        else hop.resolve({ ok: false, failure: classifyCommitError(error, hop.request, hop.own, own) });
      }
      // Cancelled although every action passed: nothing to tell apart, so each commit is judged alone.
      if (innocent.length === group.length) await Promise.all(group.map((hop) => this.sendAlone(hop)));
      else if (innocent.length > 0) await this.sendGroup(innocent);
    }
  }

  private async sendAlone(hop: Waiting): Promise<void> {
    try {
      await this.send(hop.actions.map((action) => action.write));
      hop.resolve({ ok: true });
    } catch (error) {
      hop.resolve({ ok: false, failure: classifyCommitError(error, hop.request, hop.own) });
    }
  }
}

/**
 * The commits in groups, first fit in arrival order: a commit joins the first group it fits in by action count,
 * size and items. Groups are sent at once, side by side, as the commits would have been.
 */
function pack(waiting: readonly Waiting[]): Waiting[][] {
  const groups: Array<{ hops: Waiting[]; actions: number; bytes: number; items: Set<string> }> = [];
  for (const hop of waiting) {
    let home = groups.find(
      (group) =>
        group.actions + hop.actions.length <= DYNAMODB_LIMITS.maxTransactionItems &&
        group.bytes + hop.bytes <= DYNAMODB_LIMITS.maxTransactionBytes &&
        !hop.items.some((item) => group.items.has(item)),
    );
    if (!home) {
      home = { hops: [], actions: 0, bytes: 0, items: new Set() };
      groups.push(home);
    }
    home.hops.push(hop);
    home.actions += hop.actions.length;
    home.bytes += hop.bytes;
    for (const item of hop.items) home.items.add(item);
  }
  return groups.map((group) => group.hops);
}

/** The reasons of a cancelled group, cut into each commit's slice; undefined if it was not a cancellation. */
function cancellationReasons(error: unknown, group: readonly Waiting[]): CancellationReason[][] | undefined {
  const shape = sdkError(error);
  const reasons = shape.CancellationReasons;
  const total = group.reduce((sum, hop) => sum + hop.actions.length, 0);
  if (shape.name !== 'TransactionCanceledException' || reasons?.length !== total) return undefined;
  let start = 0;
  return group.map((hop) => {
    const slice = reasons.slice(start, start + hop.actions.length);
    start += hop.actions.length;
    return slice;
  });
}

function passed(reason: CancellationReason): boolean {
  return reason.Code === undefined || reason.Code === 'None';
}
