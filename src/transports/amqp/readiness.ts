/**
 * A value that comes and goes (a live connection, an open channel), with waiters that want it within a bound.
 * Waiters are released when the value is set, or rejected when their time runs out or the owner closes.
 */
export class Readiness<T> {
  private value: T | undefined;
  private failure: Error | undefined;
  private readonly waiters = new Set<Waiter<T>>();

  get current(): T | undefined {
    return this.value;
  }

  set(value: T): void {
    this.value = value;
    for (const waiter of this.waiters) waiter.resolve(value);
    this.waiters.clear();
  }

  clear(): void {
    this.value = undefined;
  }

  /** From now on every wait fails with this error (the owner is closed). */
  fail(error: Error): void {
    this.value = undefined;
    this.failure = error;
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters.clear();
  }

  wait(timeoutMs: number, onTimeout: () => Error): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.value !== undefined) return Promise.resolve(this.value);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(onTimeout());
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}
