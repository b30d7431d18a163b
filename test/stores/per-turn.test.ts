import { describe, expect, it } from 'vitest';
import { PerTurn } from '../../src/stores/per-turn.js';

const turnEnd = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('PerTurn', () => {
  it('hands over the calls of one turn together, in arrival order, once the turn has ended', async () => {
    const handed: number[][] = [];
    const perTurn = new PerTurn<number>((items) => handed.push(items));
    perTurn.add(1);
    perTurn.add(2);
    await Promise.resolve();
    perTurn.add(3);
    expect(handed).toEqual([]);
    await turnEnd();
    expect(handed).toEqual([[1, 2, 3]]);
  });

  it('starts a new list for the next turn', async () => {
    const handed: string[][] = [];
    const perTurn = new PerTurn<string>((items) => handed.push(items));
    perTurn.add('a');
    await turnEnd();
    perTurn.add('b');
    perTurn.add('c');
    await turnEnd();
    expect(handed).toEqual([['a'], ['b', 'c']]);
  });

  it('flush hands over at once, and the turn end then hands over nothing more', async () => {
    const handed: number[][] = [];
    const perTurn = new PerTurn<number>((items) => handed.push(items));
    perTurn.add(1);
    perTurn.flush();
    expect(handed).toEqual([[1]]);
    await turnEnd();
    await turnEnd();
    expect(handed).toEqual([[1]]);
  });

  it('never hands over an empty list', async () => {
    const handed: number[][] = [];
    const perTurn = new PerTurn<number>((items) => handed.push(items));
    perTurn.flush();
    await turnEnd();
    expect(handed).toEqual([]);
  });

  it('queues a call made while a turn is handed over for the next turn', async () => {
    const handed: number[][] = [];
    const perTurn: PerTurn<number> = new PerTurn<number>((items) => {
      handed.push(items);
      if (items[0] === 1) perTurn.add(2);
    });
    perTurn.add(1);
    await turnEnd();
    expect(handed).toEqual([[1]]);
    await turnEnd();
    expect(handed).toEqual([[1], [2]]);
  });
});
