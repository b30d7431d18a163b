/** One interval's rates: per second, for each figure sampled, over the interval that ended at `at`. */
export type RatePoint<K extends string> = { at: number } & Record<K, number>;

export interface RateSamplerOptions {
  /** Time between two samples. Default 5 s. */
  intervalMs?: number;
  /** How far back the points reach. Default 10 min. */
  windowMs?: number;
  clock?: () => number;
}

interface Sample<K extends string> {
  at: number;
  values: Record<K, number>;
}

/**
 * Turns running totals into recent rates: reads the totals every interval, keeps the samples of the last window,
 * and answers each interval's increase per second. The first sample is taken at start, so the first point
 * appears one interval later. Rates divide by the time that really passed between two samples, so a late timer
 * does not inflate them.
 */
export class RateSampler<K extends string> {
  readonly intervalMs: number;
  private readonly keep: number;
  private readonly clock: () => number;
  private readonly samples: Sample<K>[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly read: () => Promise<Record<K, number>>,
    options: RateSamplerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5_000;
    this.clock = options.clock ?? Date.now;
    // n points need n + 1 samples.
    this.keep = Math.max(1, Math.floor((options.windowMs ?? 600_000) / this.intervalMs)) + 1;
  }

  start(): void {
    if (this.timer) return;
    void this.sample();
    // Unref'd: sampling never keeps a process alive on its own.
    this.timer = setInterval(() => void this.sample(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now (the timer calls this; tests call it directly). A failed read is skipped. */
  async sample(): Promise<void> {
    const at = this.clock();
    let values: Record<K, number>;
    try {
      values = await this.read();
    } catch {
      return;
    }
    this.samples.push({ at, values });
    if (this.samples.length > this.keep) this.samples.splice(0, this.samples.length - this.keep);
  }

  /** Per-second rates over each interval of the window, oldest first. */
  points(): RatePoint<K>[] {
    const points: RatePoint<K>[] = [];
    for (let i = 1; i < this.samples.length; i++) {
      const before = this.samples[i - 1] as Sample<K>;
      const after = this.samples[i] as Sample<K>;
      const seconds = (after.at - before.at) / 1000;
      if (seconds <= 0) continue;
      const point = { at: after.at } as RatePoint<K>;
      for (const key of Object.keys(after.values) as K[]) {
        const perSecond = (after.values[key] - (before.values[key] ?? 0)) / seconds;
        // Thousandths are enough for a chart, and keep the answer short.
        (point as Record<K, number>)[key] = Math.round(perSecond * 1000) / 1000;
      }
      points.push(point);
    }
    return points;
  }
}
