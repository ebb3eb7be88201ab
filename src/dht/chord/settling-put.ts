/**
 * A put that keeps trying while the ring settles.
 *
 * ChordNode.put fails with DHT_LOOKUP_FAILED when no owner can be confirmed
 * yet (a node joined next to the key less than a stabilize period ago, or a
 * fresh ring is still forming), and the maintenance tick puts the record
 * again two periods later. A writer that must know the record landed before
 * it answers (a SecP2PSIP registration) waits here instead: the put is tried
 * again every min(period, 250 ms) for up to `withinMs`, and never longer
 * than three periods; what still fails is left to the maintenance re-put, as
 * any put. This is the one retry policy of a Chord write: callers state how
 * long they can wait, not how to retry.
 */
import type { PutEntry, PutManyOptions } from './batch-put.ts';
import type { ChordNode } from './chord-node.ts';
import type { PutResult } from './chord-types.ts';

/** Pause between tries (at most one stabilize period). */
const SETTLE_RETRY_MS = 250;

/** What the settling put uses of a node: its put, its clock and its stabilize period. */
export type SettlingNode = Pick<ChordNode, 'put' | 'clock' | 'init'>;

export async function putSettled(
  node: SettlingNode,
  key: string,
  value: Uint8Array | string,
  ttlMs: number,
  withinMs: number,
): Promise<PutResult> {
  const period = node.init.stabilizeMs;
  const giveUpAt = node.clock.now() + Math.min(withinMs, 3 * period);
  const pause = Math.min(period, SETTLE_RETRY_MS);
  let r = await node.put(key, value, ttlMs);
  while (!r.ok && r.error === 'DHT_LOOKUP_FAILED' && node.clock.now() + pause < giveUpAt) {
    await new Promise<void>((done) => node.clock.setTimer(pause, done));
    r = await node.put(key, value, ttlMs);
  }
  return r;
}

/**
 * The settling put of several records as one batch (ChordNode.putMany): the same tries on the same schedule,
 * each try a batch of the records whose owner could not be confirmed yet. Results in the order of `entries`.
 * `opts.storeAfter` gates the first try's STOREs (batch-put.ts); the later tries come after it anyway.
 */
export async function putManySettled(
  node: Pick<ChordNode, 'putMany' | 'clock' | 'init'>,
  entries: readonly PutEntry[],
  ttlMs: number,
  withinMs: number,
  opts?: PutManyOptions,
): Promise<PutResult[]> {
  const period = node.init.stabilizeMs;
  const giveUpAt = node.clock.now() + Math.min(withinMs, 3 * period);
  const pause = Math.min(period, SETTLE_RETRY_MS);
  const out = await node.putMany(entries, ttlMs, opts);
  const unsettled = () => out.flatMap((r, i) => (!r.ok && r.error === 'DHT_LOOKUP_FAILED' ? [i] : []));
  for (let todo = unsettled(); todo.length > 0 && node.clock.now() + pause < giveUpAt; todo = unsettled()) {
    await new Promise<void>((done) => node.clock.setTimer(pause, done));
    const again = await node.putMany(
      todo.map((i) => entries[i]),
      ttlMs,
    );
    todo.forEach((i, j) => {
      out[i] = again[j];
    });
  }
  return out;
}
