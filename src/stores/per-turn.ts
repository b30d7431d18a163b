/**
 * The calls a store gets in one turn of the event loop, handed over together at the turn's end: the duplicate
 * checks or commits of the requests and deliveries that arrived together then share one transaction or one
 * request. The turn's end is `setImmediate`, not a microtask: it runs after the poll phase, once every connection
 * that had data in this turn has made its call.
 */
export class PerTurn<T> {
  private items: T[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly atTurnEnd = (): void => {
    this.scheduled = undefined;
    this.handOverQueued();
  };

  /** `handOver` gets the calls of a turn, in arrival order; never an empty list. */
  constructor(private readonly handOver: (items: T[]) => void) {}

  add(item: T): void {
    this.items.push(item);
    this.scheduled ??= setImmediate(this.atTurnEnd);
  }

  /** Hands over what is queued now, before the turn ends (a store's close: nobody is left waiting). */
  flush(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    this.handOverQueued();
  }

  private handOverQueued(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.handOver(items);
  }
}
