/**
 * Putting a user's records into the ring (seed 000 IV.2 "Public Key
 * Distribution", "Lookup Information Distribution"): the n pieces at
 * `Username.i` and the user-signed location record at `Username`, each in an
 * envelope this bootstrap signs. And keeping them there:
 *
 * - A registration is claimed in the registry with its records 'pending',
 *   published, then marked 'published' (name-registry.ts): a crash between
 *   two steps leaves a pending row, which `sweepPending` publishes again, at
 *   start and every PENDING_SWEEP_MS.
 * - A ring record lives at most RING_TTL_MS after it was signed
 *   (ring-records.ts): names are signed and put again well before. With a
 *   registry of its own, a bootstrap does all its names every RING_TTL_MS/3;
 *   with a shared registry, each bootstrap takes the names that are due in
 *   batches (`resealDue`), so the work is split among the live bootstraps
 *   and one that is down leaves nothing to expire.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { PutEntry } from '../dht/chord/batch-put.ts';
import { putManySettled } from '../dht/chord/settling-put.ts';
import type { Identity } from '../identity/identity.ts';
import type { Clock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { NameRegistry } from './name-registry.ts';
import type { RegistryEntry } from './registry.ts';
import { pieceKey, RING_TTL_MS, sealRingSet } from './ring-records.ts';

/**
 * The longest a registration waits for a user's records to be stored while the ring settles (a fresh
 * overlay, a restart): inside the adapter's and a forwarding bootstrap's 5 s RPC timeout.
 */
export const PUBLISH_BUDGET_MS = 3000;
/** How often pending publications are looked for, and how old one must be to be taken (ms). */
export const PENDING_SWEEP_MS = 30_000;
/** Names taken per batch by a sweep. */
const SWEEP_BATCH = 100;

export interface NamePublisherComponents {
  identity: Identity;
  ring: ChordNode;
  names: NameRegistry;
  clock: Clock;
  logger: Logger;
}

/** A user's records signed as one set, not yet stored (NamePublisher.seal). */
export interface SealedRecords {
  name: string;
  entries: PutEntry[];
}

export interface NamePublisherInit {
  k: number;
  n: number;
  /** Whether this bootstrap republishes `name` at start (the names whose authority it is). */
  owns(name: string): boolean;
}

export class NamePublisher {
  private readonly c: NamePublisherComponents;
  private readonly o: NamePublisherInit;

  constructor(c: NamePublisherComponents, o: NamePublisherInit) {
    this.c = c;
    this.o = o;
  }

  /**
   * Store the n pieces and the location record as one batch put (dht/chord/batch-put.ts). While nodes
   * are joining no owner may be confirmable yet: each put keeps trying for up
   * to PUBLISH_BUDGET_MS (Chord's settling put, dht/chord/settling-put.ts),
   * and one that still fails is put again by the ring's maintenance. The
   * n + 1 records are signed as one set (ring-records.ts sealRingSet): one
   * signature, which a reader of all of them verifies once.
   */
  async publish(name: string, pieces: Uint8Array[], location: Uint8Array): Promise<void> {
    await this.put(this.seal(name, pieces, location));
  }

  /**
   * The first half of publish: the n + 1 records signed as one set, ready to put. No I/O: a registration
   * does it while its claim is being made durable (bootstrap-registration.ts).
   */
  seal(name: string, pieces: Uint8Array[], location: Uint8Array): SealedRecords {
    const { ring, identity, clock } = this.c;
    const entries = [
      { key: name, payload: location },
      ...pieces.map((p, i) => ({ key: pieceKey(name, i + 1), payload: p })),
    ];
    const values = sealRingSet(identity, entries, clock.wallNow(), (key) => ring.store.validatorFor(key));
    return { name, entries: entries.map((e, i) => ({ key: e.key, value: values[i] })) };
  }

  /**
   * The second half of publish: store the sealed records (see publish). With `storeAfter`, their owners are
   * looked up at once and nothing is stored before it resolves; nothing at all if it rejects (batch-put.ts).
   */
  async put(sealed: SealedRecords, storeAfter?: Promise<unknown>): Promise<void> {
    const { name, entries } = sealed;
    // One batch: the n + 1 keys' lookups share their replies, and each holder gets one STORE with its records.
    const res = await putManySettled(this.c.ring, entries, RING_TTL_MS, PUBLISH_BUDGET_MS, { storeAfter });
    if (!res[0].ok) throw new OverlayError('DHT_LOOKUP_FAILED', `storing ${name}: ${res[0].reason}`);
    const stored = res.slice(1).filter((r) => r.ok).length;
    if (stored < this.o.k) throw new OverlayError('DHT_LOOKUP_FAILED', `only ${stored} of ${this.o.n} pieces stored`);
    if (stored < this.o.n) this.c.logger.warn({ user: name, stored, n: this.o.n }, 'some pieces could not be stored');
  }

  /** Publish a registry entry's records and mark them published; false when it has none or the ring refused. */
  async publishEntry(e: RegistryEntry): Promise<boolean> {
    if (!e.pieces || !e.location || e.pieces.length !== this.o.n) return false;
    try {
      await this.publish(e.name, e.pieces, e.location);
      await this.c.names.markPublished(e.name, e.location, this.c.clock.wallNow());
      return true;
    } catch (err) {
      this.c.logger.warn({ user: e.name, err: (err as Error).message }, 'republish failed');
      return false;
    }
  }

  /**
   * Publish again the registrations pending since before `olderThan` (a crash or a ring failure stopped
   * them). Each batch is taken (its time set to now), so with `olderThan` <= now none comes twice and the
   * loop ends even when the ring refuses every put.
   */
  async sweepPending(olderThan: number): Promise<number> {
    let done = 0;
    for (;;) {
      const now = this.c.clock.wallNow();
      const batch = await this.c.names.pending(Math.min(olderThan, now), now, SWEEP_BATCH);
      for (const e of batch) if (await this.publishEntry(e)) done++;
      if (batch.length < SWEEP_BATCH) break;
    }
    if (done > 0) this.c.logger.info({ users: done }, 'pending registrations published');
    return done;
  }

  /**
   * After a start: the pending registrations, then every name this bootstrap owns (the ring may have lost
   * them while it was down). Returns how many names were put.
   */
  async republishAll(): Promise<number> {
    let done = await this.sweepPending(this.c.clock.wallNow());
    for (const e of await this.c.names.all()) {
      if (e.state === 'pending' || !this.o.owns(e.name)) continue;
      if (await this.publishEntry(e)) done++;
    }
    return done;
  }

  /** Shared registry: sign and put again the names last put more than RING_TTL_MS/3 ago, batch by batch. */
  async resealDue(): Promise<number> {
    const take = this.c.names.resealDue;
    if (!take) return 0;
    let done = 0;
    for (;;) {
      const now = this.c.clock.wallNow();
      const batch = await take.call(this.c.names, now - RING_TTL_MS / 3, now, SWEEP_BATCH);
      for (const e of batch) if (await this.publishEntry(e)) done++;
      if (batch.length < SWEEP_BATCH) return done;
    }
  }

  /** The periodic sweeps, on the injected clock, until the ring stops; each waits for its previous run. */
  start(): void {
    const { clock, ring, logger, names } = this.c;
    const loop = (ms: number, run: () => Promise<number>, what: string) => {
      clock.setTimer(ms, () => {
        if (ring.stopped) return;
        run()
          .then(
            (n) => logger.debug({ users: n }, what),
            (e) => logger.debug({ err: (e as Error).message }, `${what}: will try again`),
          )
          .finally(() => loop(ms, run, what));
      });
    };
    loop(PENDING_SWEEP_MS, () => this.sweepPending(clock.wallNow() - PENDING_SWEEP_MS), 'pending registrations swept');
    if (names.shared)
      loop(
        PENDING_SWEEP_MS,
        async () => {
          await names.maintain?.();
          return this.resealDue();
        },
        'due names signed again',
      );
    else loop(RING_TTL_MS / 3, () => this.republishAll(), 'ring records signed again');
  }
}
