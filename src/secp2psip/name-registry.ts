/**
 * The port through which a bootstrap reads and binds names: who owns which
 * name, with which key, and the records it last published for it. Two
 * implementations: the embedded SQLite file of one bootstrap (registry.ts;
 * with several bootstraps each owns the names rendezvous hashing gives it,
 * name-authority.ts), and a PostgreSQL database every bootstrap of a set
 * shares (registry-pg.ts; any bootstrap admits any name, the database's
 * unique constraint decides who came first).
 *
 * Methods may answer at once (SQLite) or later (PostgreSQL): callers await.
 *
 * A registration is written in this order, so that a crash at any point
 * leaves nothing half-written behind (design.md "A registry shared on
 * PostgreSQL"):
 *
 * 1. `claim` binds the name (or confirms it) and stores the pieces and the
 *    location record to publish, with state 'pending', in one transaction;
 * 2. the bootstrap puts the pieces and the location into the ring;
 * 3. `markPublished` sets state 'published' (only if the location is still
 *    the one just published: a later registration stays pending), just
 *    after the adapter was answered (nothing it needs waits for this write).
 *
 * A crash between 1 and 3 leaves a 'pending' row, which `pending` hands to
 * the next sweep (at start, and periodically) to publish again. Publishing
 * twice is harmless: the ring keeps the newer of two bootstrap-signed values.
 */
import type { ClaimOutcome, NewNamePolicy, RegistryEntry } from './registry.ts';

export type Awaitable<T> = T | Promise<T>;

/** What a registration publishes: the location record (encoded) and the n pieces. */
export interface PublishRecords {
  location: Uint8Array;
  pieces: Uint8Array[];
}

export interface NameRegistry {
  /** True when every bootstrap of the set uses this registry: any of them admits any name, none forwards. */
  readonly shared: boolean;
  /**
   * True when the registry counts the new-name rates itself (`policy.rates`), in the claim's
   * transaction, so that every bootstrap sharing it sees the same counts.
   */
  readonly countsRates: boolean;
  get(name: string): Awaitable<RegistryEntry | undefined>;
  /**
   * Bind `name` (first come, first served) or confirm it for the same keys; with `records`, store
   * them as the name's pending publication in the same transaction (see the module comment).
   */
  claim(
    name: string,
    keys: { signKey: Uint8Array; sealKey: Uint8Array },
    now: number,
    certFingerprint?: string,
    policy?: NewNamePolicy,
    records?: PublishRecords,
  ): Awaitable<ClaimOutcome>;
  /** Store the pieces of a name bound before they were kept (or split again for another n). */
  setPieces(name: string, pieces: Uint8Array[]): Awaitable<void>;
  /** Step 3: the records with this location are in the ring. */
  markPublished(name: string, location: Uint8Array, now: number): Awaitable<void>;
  /** The same for several names at once, in one transaction where the store has them (optional). */
  markPublishedMany?(items: ReadonlyArray<{ name: string; location: Uint8Array }>, now: number): Awaitable<void>;
  /** Names whose publication is pending since before `olderThan` (at most `limit`), taken for a retry. */
  pending(olderThan: number, now: number, limit: number): Awaitable<RegistryEntry[]>;
  /**
   * Shared registries only: published names last put into the ring before `olderThan`, taken (so that
   * no other bootstrap takes them in the meantime) for signing and putting again.
   */
  resealDue?(olderThan: number, now: number, limit: number): Awaitable<RegistryEntry[]>;
  /** Housekeeping of a shared registry, run with every reseal sweep (forgetting stale rate buckets). */
  maintain?(): Awaitable<void>;
  /** Forget a binding (an operator's act); false when the name is not bound. */
  release(name: string): Awaitable<boolean>;
  all(): Awaitable<RegistryEntry[]>;
  count(): Awaitable<number>;
  createInvites(count: number, now: number, expiresAt: number, name?: string): Awaitable<string[]>;
  close(): Awaitable<void>;
}
