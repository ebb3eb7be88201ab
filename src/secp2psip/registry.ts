/**
 * The bootstrap's registry (seed 000 IV.2 "Bootstrap Verification"): which
 * key each SIP user name is bound to, since when, and the last location record
 * the user signed. Also the ring ids the bootstrap has assigned to node keys,
 * so an adapter that comes back keeps its place. SQLite, survives restarts.
 * What a new name spends (the adapter's count, an enrolment token) is
 * registry-new-names.ts; the witness file beside it, registry-witness.ts.
 */
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type { UserKeyBundle } from './messages.ts';
import type { NameRegistry, PublishRecords } from './name-registry.ts';
import { syncPath } from '../identity/key-file.ts';
import { bytesEqual } from '../util/bytes.ts';
import { openDatabase } from '../util/sqlite.ts';
import { admitNewName, createInvites, namesBoundBy } from './registry-new-names.ts';
import { writeRegistryWitness } from './registry-witness.ts';

/** The tables and columns this program's registry file has (checked before a bootstrap starts). */
export const REGISTRY_TABLES = {
  users: ['name', 'sign_key', 'seal_key', 'registered_at', 'updated_at', 'cert_fpr', 'location', 'pieces'],
  nodes: ['node_key', 'node_id', 'admitted_at'],
  node_names: ['node_key', 'names'],
  invites: ['hash', 'name', 'created_at', 'expires_at', 'used_by', 'used_at'],
} as const;

// Callers read the witness with the registry.
export { readRegistryWitness } from './registry-witness.ts';

export interface RegistryEntry extends UserKeyBundle {
  /** Last registration seen (ms since epoch). */
  updatedAt: number;
  /** SHA-256 of the leaf certificate in strict mode, hex; absent in relaxed mode. */
  certFingerprint?: string;
  /** Last location record the user signed (encoded), for republishing. */
  location?: Uint8Array;
  /** The n pieces of the key bundle as first split: re-stored unchanged on re-registration or republishing. */
  pieces?: Uint8Array[];
  /** 'pending' from the claim until the records are in the ring (name-registry.ts); absent: published. */
  state?: 'pending' | 'published';
}

export type ClaimOutcome =
  | { outcome: 'created' | 'same'; entry: RegistryEntry }
  | { outcome: 'taken'; entry: RegistryEntry }
  | { outcome: 'refused'; code: 'USER_NAME_QUOTA' | 'USER_INVITE_INVALID' | 'USER_NAME_RATE'; reason: string };

/** What a new name needs besides being free (see claim). */
export interface NewNamePolicy {
  /** The adapter's node key: its count of names bound is kept per key, across restarts. */
  nodeKey: Uint8Array;
  /** At most this many names bound through one node key in total (undefined or 0: no limit). */
  maxPerNode?: number;
  /** A new name needs an unused, unexpired enrolment token (for this name, or for any name). */
  requireInvite?: boolean;
  /** The token the REGISTER carried. */
  invite?: string;
  /**
   * New names per minute per node key and per source address, for registries that count them
   * (NameRegistry.countsRates); others leave the rates to the bootstrap.
   */
  rates?: { perMinute?: number; perAddressPerMinute?: number; source: string };
}

interface UserRow {
  name: string;
  sign_key: Buffer;
  seal_key: Buffer;
  registered_at: number;
  updated_at: number;
  cert_fpr: string | null;
  location: Buffer | null;
  pieces: Buffer | null;
  state?: string;
}

function toEntry(r: UserRow): RegistryEntry {
  const e: RegistryEntry = {
    name: r.name,
    signKey: new Uint8Array(r.sign_key),
    sealKey: new Uint8Array(r.seal_key),
    registeredAt: r.registered_at,
    updatedAt: r.updated_at,
  };
  if (r.cert_fpr) e.certFingerprint = r.cert_fpr;
  if (r.location) e.location = new Uint8Array(r.location);
  if (r.pieces) {
    const p = cborDecode(new Uint8Array(r.pieces)) as unknown;
    if (Array.isArray(p) && p.every((x) => x instanceof Uint8Array)) e.pieces = p;
  }
  if (r.state === 'pending') e.state = 'pending';
  return e;
}

export class Registry implements NameRegistry {
  /** One bootstrap's file: with several bootstraps, each owns the names rendezvous hashing gives it. */
  readonly shared = false;
  /** New-name rates are counted in the bootstrap's memory (only it binds the names it owns). */
  readonly countsRates = false;
  private readonly db: Database.Database;
  private readonly witness?: string;
  private witnessed = 0;
  /** The write-ahead log's file (none in memory), and whether its directory entry was synced (see sync). */
  private readonly wal?: string;
  private walLinked = false;

  /**
   * `path` is a file, or ':memory:' for tests. With `witness`, the user count
   * is kept in that file too (see readRegistryWitness). The registry is the
   * source of truth for names: every commit reaches the disk
   * (synchronous=FULL in WAL mode) before a registration is answered.
   */
  constructor(path: string, opts: { witness?: string } = {}) {
    this.db = openDatabase(path);
    if (path !== ':memory:' && path !== '') this.wal = `${path}-wal`;
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY,
        sign_key BLOB NOT NULL,
        seal_key BLOB NOT NULL,
        registered_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        cert_fpr TEXT,
        location BLOB,
        pieces BLOB
      );
      CREATE TABLE IF NOT EXISTS nodes (
        node_key BLOB PRIMARY KEY,
        node_id TEXT NOT NULL UNIQUE,
        admitted_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS node_names (
        node_key BLOB PRIMARY KEY,
        names INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS invites (
        hash BLOB PRIMARY KEY,
        name TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_by TEXT,
        used_at INTEGER
      );
    `);
    // Files from before publication states: every row counts as published (none is pending).
    const cols = (this.db.pragma('table_info(users)') as Array<{ name: string }>).map((c) => c.name);
    if (!cols.includes('state')) this.db.exec(`ALTER TABLE users ADD COLUMN state TEXT NOT NULL DEFAULT 'published'`);
    if (!cols.includes('publish_at'))
      this.db.exec('ALTER TABLE users ADD COLUMN publish_at INTEGER NOT NULL DEFAULT 0');
    this.witness = opts.witness;
    if (this.witness) {
      this.witnessed = this.count();
      writeRegistryWitness(this.witness, this.witnessed);
    }
  }

  /** Write the witness when the registry goes from no users to some, or back (never fatal here). */
  private updateWitness(force = false): void {
    if (!this.witness) return;
    const n = this.count();
    if (!force && n > 0 === this.witnessed > 0) return;
    try {
      writeRegistryWitness(this.witness, n);
      this.witnessed = n;
    } catch {
      // Tried again at the next change and at close; the registry itself holds the truth.
    }
  }

  /** An online copy of the registry (SQLite backup API) to `file`, safe while a bootstrap runs. */
  async backup(file: string): Promise<number> {
    await this.db.backup(file);
    return this.count();
  }

  get(name: string): RegistryEntry | undefined {
    const row = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    return row ? toEntry(row) : undefined;
  }

  /**
   * Bind `name` to the keys if it is free, or confirm it if already bound to
   * the same signing and sealing keys; a different key for a taken name is refused.
   * A free name is bound only as `policy` allows: within the node key's total,
   * and with an enrolment token when one is required; the token is spent and
   * the node's count raised in the same transaction as the binding.
   * Re-registration with the same keys is never limited.
   */
  claim(
    name: string,
    keys: { signKey: Uint8Array; sealKey: Uint8Array },
    now: number,
    certFingerprint?: string,
    policy?: NewNamePolicy,
    records?: PublishRecords,
  ): ClaimOutcome {
    const tx = this.db.transaction((): ClaimOutcome => {
      const cur = this.get(name);
      if (cur) {
        if (!bytesEqual(cur.signKey, keys.signKey) || !bytesEqual(cur.sealKey, keys.sealKey))
          return { outcome: 'taken', entry: cur };
        if (records)
          this.db
            .prepare(`UPDATE users SET updated_at = ?, location = ?, state = 'pending', publish_at = ? WHERE name = ?`)
            .run(now, Buffer.from(records.location), now, name);
        else this.db.prepare('UPDATE users SET updated_at = ? WHERE name = ?').run(now, name);
        return { outcome: 'same', entry: this.get(name) as RegistryEntry };
      }
      if (policy) {
        // Spent in this transaction: the adapter's count, the enrolment token (registry-new-names.ts).
        const refused = admitNewName(this.db, name, now, policy);
        if (refused) return refused;
      }
      this.db
        .prepare(
          `INSERT INTO users (name, sign_key, seal_key, registered_at, updated_at, cert_fpr, location, pieces, state, publish_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          name,
          Buffer.from(keys.signKey),
          Buffer.from(keys.sealKey),
          now,
          now,
          certFingerprint ?? null,
          records ? Buffer.from(records.location) : null,
          records ? Buffer.from(cborEncode(records.pieces)) : null,
          records ? 'pending' : 'published',
          now,
        );
      return { outcome: 'created', entry: this.get(name) as RegistryEntry };
    });
    const out = tx();
    if (out.outcome === 'created' && this.witnessed === 0) this.updateWitness();
    return out;
  }

  /**
   * Forget a user's binding (an operator's act: the key was lost or replaced).
   * The name is then free; the next registration binds it to a new key, with a
   * later registration time, which is what adapters that trusted the old key
   * check before accepting the new one. False when the name is not bound.
   */
  release(name: string): boolean {
    const gone = this.db.prepare('DELETE FROM users WHERE name = ?').run(name).changes === 1;
    if (gone) this.updateWitness();
    return gone;
  }

  setLocation(name: string, location: Uint8Array): void {
    this.db.prepare('UPDATE users SET location = ? WHERE name = ?').run(Buffer.from(location), name);
  }

  /**
   * claim, committed without waiting for the disk (synchronous=NORMAL for this commit alone): the
   * outcome is decided and visible at once, in the same synchronous step as before, and `sync` makes it
   * durable off the event loop. The caller must await `sync` before anything leaves on the strength of
   * the claim (the records' publication, the answer): then a power cut loses only claims nobody was
   * told of and whose records were never put, as with an fsync inside the commit; a crashed process
   * loses none (the commit is in the log's file already).
   */
  claimUnsynced(...args: Parameters<Registry['claim']>): ClaimOutcome {
    this.db.pragma('synchronous = NORMAL');
    try {
      return this.claim(...args);
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /**
   * Everything committed so far is on disk: fdatasync of the write-ahead log on libuv's thread pool (what
   * a synchronous=FULL commit does on the event loop; checkpoints sync the log and the database file
   * themselves). The log's directory entry is synced once too: a log created by a commit that did not
   * sync would otherwise be lost in a power cut with everything in it.
   */
  async sync(): Promise<void> {
    if (this.wal === undefined) return;
    await syncPath(this.wal, true);
    if (this.walLinked) return;
    // Some platforms cannot fsync a directory.
    await syncPath(dirname(this.wal)).catch(() => {});
    this.walLinked = true;
  }

  setPieces(name: string, pieces: Uint8Array[]): void {
    this.db.prepare('UPDATE users SET pieces = ? WHERE name = ?').run(Buffer.from(cborEncode(pieces)), name);
  }

  /** The records with this location are in the ring (a later registration's location stays pending). */
  markPublished(name: string, location: Uint8Array, now: number): void {
    this.markPublishedMany([{ name, location }], now);
  }

  /**
   * Several marks in one transaction. Not fsynced (synchronous=NORMAL for this commit alone): a mark lost
   * to a power cut leaves its name pending, and the pending sweep puts the same records again
   * (published-marks.ts, name-publisher.ts), so a mark need not hold the event loop (and the next
   * registration's claim) for an fsync. It is in the write-ahead log at once, so a crashed process loses
   * none, and the next claim's commit (synchronous=FULL syncs the whole log) or a checkpoint makes it
   * durable.
   */
  markPublishedMany(items: ReadonlyArray<{ name: string; location: Uint8Array }>, now: number): void {
    const st = this.db.prepare(`UPDATE users SET state = 'published', publish_at = ? WHERE name = ? AND location = ?`);
    this.db.pragma('synchronous = NORMAL');
    try {
      this.db.transaction(() => {
        for (const i of items) st.run(now, i.name, Buffer.from(i.location));
      })();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /**
   * Names pending publication since before `olderThan`, oldest first, taken: their time is set to `now`,
   * so that a sweep (which asks with `olderThan` <= `now`) does not get them twice.
   */
  pending(olderThan: number, now: number, limit: number): RegistryEntry[] {
    return this.db.transaction(() => {
      const rows = this.db
        .prepare(`SELECT * FROM users WHERE state = 'pending' AND publish_at < ? ORDER BY publish_at LIMIT ?`)
        .all(olderThan, limit) as UserRow[];
      const take = this.db.prepare('UPDATE users SET publish_at = ? WHERE name = ?');
      for (const r of rows) take.run(now, r.name);
      return rows.map(toEntry);
    })();
  }

  /** How many names have been bound through a node key (kept across restarts). */
  namesBoundBy(nodeKey: Uint8Array): number {
    return namesBoundBy(this.db, nodeKey);
  }

  /**
   * Make `count` one-time enrolment tokens valid until `expiresAt` (for `name` only, when given). The
   * tokens are returned once; the registry keeps only their hashes.
   */
  createInvites(count: number, now: number, expiresAt: number, name?: string): string[] {
    return createInvites(this.db, count, now, expiresAt, name);
  }

  /** Every registered user, oldest first (for republishing pieces after a restart). */
  all(): RegistryEntry[] {
    const rows = this.db.prepare('SELECT * FROM users ORDER BY registered_at, name').all() as UserRow[];
    return rows.map(toEntry);
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS c FROM users').get() as { c: number }).c;
  }

  /** The ring id assigned to a node key, minting one with `mint` the first time. */
  nodeId(nodeKey: Uint8Array, now: number, mint: () => string): string {
    const tx = this.db.transaction((): string => {
      const row = this.db.prepare('SELECT node_id FROM nodes WHERE node_key = ?').get(Buffer.from(nodeKey)) as
        | { node_id: string }
        | undefined;
      if (row) return row.node_id;
      for (let i = 0; i < 8; i++) {
        const id = mint();
        const clash = this.db.prepare('SELECT 1 FROM nodes WHERE node_id = ?').get(id);
        if (clash) continue;
        this.db
          .prepare('INSERT INTO nodes (node_key, node_id, admitted_at) VALUES (?, ?, ?)')
          .run(Buffer.from(nodeKey), id, now);
        return id;
      }
      throw new Error('could not mint a free node id');
    });
    return tx();
  }

  close(): void {
    if (!this.db.open) return;
    this.updateWitness(true);
    this.db.close();
  }
}
