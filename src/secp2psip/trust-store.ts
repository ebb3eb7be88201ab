/**
 * Trust on first use of callee (and caller) keys. The first key rebuilt from
 * the ring for a name is remembered; a different key later is refused unless
 * the bootstrap shows the name was re-registered after we first trusted it
 * (`accept` is then called by the adapter with the newer bundle).
 *
 * The keys in memory are authoritative; the file is their copy for the next
 * start. A disk that refuses a write (read-only, full, I/O error) never fails
 * the call that learned the key: the entry stays in memory (so a changed key
 * is still refused), the fault is logged once with the file and errno, and
 * the writes are retried with backoff until the disk takes them. An adapter
 * started on a read-only data directory reads the file read-only and opens it
 * for writing once it can. A file that is not a database is fatal (the
 * daemon's data-dir check refuses it before binding a port).
 */
import { existsSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { UserKeyBundle } from './messages.ts';
import { type Clock, SystemClock, type Timer } from '../util/clock.ts';
import { dataFileError, isDamaged, readSqliteFile, writeFault } from '../util/data-file.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { openDatabase } from '../util/sqlite.ts';
import { bytesEqual } from '../util/bytes.ts';

/** The table and columns of this program's trust file (checked before an adapter starts). */
export const TRUST_TABLES = {
  trusted: ['name', 'sign_key', 'seal_key', 'registered_at', 'first_seen', 'last_seen'],
} as const;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS trusted (
    name TEXT PRIMARY KEY,
    sign_key BLOB NOT NULL,
    seal_key BLOB NOT NULL,
    registered_at INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
  );
`;

/** Backoff of the retries after a refused write: first, then doubling up to the cap. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 10_000;

export interface TrustStoreOptions {
  logger?: Logger;
  /** Schedules the retries of refused writes (default: the system clock). */
  clock?: Clock;
}

export type TrustVerdict = 'new' | 'match' | 'mismatch';

export interface TrustedKey extends UserKeyBundle {
  firstSeen: number;
  lastSeen: number;
}

interface Row {
  name: string;
  sign_key: Buffer;
  seal_key: Buffer;
  registered_at: number;
  first_seen: number;
  last_seen: number;
}

/** How often an unchanged trusted key's last_seen reaches the disk. */
const LAST_SEEN_WRITE_MS = 60_000;

function fromRow(r: Row): TrustedKey {
  return {
    name: r.name,
    signKey: new Uint8Array(r.sign_key),
    sealKey: new Uint8Array(r.seal_key),
    registeredAt: r.registered_at,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
  };
}

export class TrustStore {
  readonly path: string;
  /** Open for writing; undefined while the disk does not let us (every key is then in `cache`). */
  private db: Database.Database | undefined;
  private upsertRow: Database.Statement | undefined;
  private readonly cache = new Map<string, TrustedKey>();
  /** Names whose last_seen moved in memory only, with when the row was last written. */
  private readonly writtenAt = new Map<string, number>();
  private readonly dirty = new Set<string>();
  /** Names whose row the disk refused: written again by the retries. */
  private readonly pending = new Set<string>();
  private readonly log: Logger;
  private readonly clock: Clock;
  private retryTimer: Timer | undefined;
  private retryMs = RETRY_FIRST_MS;
  private closed = false;
  /** Writes refused by the disk so far, and whether the disk is refusing now. */
  readonly stats = { failedWrites: 0, recoveries: 0, faulty: false };

  constructor(path: string, opts: TrustStoreOptions = {}) {
    this.path = path;
    this.log = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? new SystemClock();
    try {
      this.openWritable();
    } catch (e) {
      if (path === ':memory:' || isDamaged(e)) throw dataFileError(path, (e as Error).message);
      // The disk refuses (read-only directory, no space): read what it holds, write later.
      this.preload();
      this.fault('open', e);
    }
  }

  private openWritable(): void {
    const db = openDatabase(this.path);
    try {
      db.exec(SCHEMA);
      for (const r of db.prepare('SELECT * FROM trusted').all() as Row[])
        if (!this.cache.has(r.name)) this.cache.set(r.name, fromRow(r));
      this.upsertRow = db.prepare(
        `INSERT INTO trusted (name, sign_key, seal_key, registered_at, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET sign_key = excluded.sign_key, seal_key = excluded.seal_key,
           registered_at = excluded.registered_at, first_seen = excluded.first_seen, last_seen = excluded.last_seen`,
      );
    } catch (e) {
      db.close();
      throw e;
    }
    this.db = db;
  }

  /**
   * Every trusted key into memory without writing next to the file (readSqliteFile). No file yet:
   * nothing to read. A file that exists but cannot be read is fatal: starting without its keys would
   * trust any key for those names.
   */
  private preload(): void {
    if (!existsSync(this.path)) return;
    let rows: Row[];
    try {
      rows = readSqliteFile(this.path, (db) =>
        db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trusted'").get()
          ? (db.prepare('SELECT * FROM trusted').all() as Row[])
          : [],
      );
    } catch (e) {
      throw dataFileError(this.path, `cannot read the trusted keys: ${(e as Error).message}`);
    }
    for (const r of rows) this.cache.set(r.name, fromRow(r));
  }

  /** Every trusted key is in memory (read at open): a lookup never waits on, or fails with, the disk. */
  get(name: string): TrustedKey | undefined {
    return this.cache.get(name);
  }

  /** Compare a rebuilt bundle with what we trusted before; the name and both keys must match. */
  check(b: UserKeyBundle): TrustVerdict {
    const t = this.get(b.name);
    if (!t) return 'new';
    const same = bytesEqual(t.signKey, b.signKey) && bytesEqual(t.sealKey, b.sealKey);
    return same ? 'match' : 'mismatch';
  }

  /**
   * Remember (or, after a verified re-registration, replace) the key for a
   * name. A key that is already trusted only moves its last_seen: that is
   * written at most once a minute per name (and on close), so verified calls
   * do not each wait on a database write.
   */
  accept(b: UserKeyBundle, now: number): void {
    const prev = this.get(b.name);
    const same = prev !== undefined && this.check(b) === 'match';
    const firstSeen = same ? prev.firstSeen : now;
    const entry = {
      name: b.name,
      signKey: b.signKey,
      sealKey: b.sealKey,
      registeredAt: b.registeredAt,
      firstSeen,
      lastSeen: now,
    };
    const written = this.writtenAt.get(b.name);
    if (
      same &&
      prev.registeredAt === b.registeredAt &&
      written !== undefined &&
      now - written < LAST_SEEN_WRITE_MS &&
      now >= written
    ) {
      this.cache.set(b.name, entry);
      this.dirty.add(b.name);
      return;
    }
    this.write(entry);
  }

  /** Memory first (authoritative), then the disk; a refused write is kept for the retries, never thrown. */
  private write(t: TrustedKey): void {
    this.cache.set(t.name, t);
    this.dirty.delete(t.name);
    if (this.pending.size > 0 || !this.upsertRow) {
      this.pending.add(t.name);
      return;
    }
    try {
      this.upsertRow.run(
        t.name,
        Buffer.from(t.signKey),
        Buffer.from(t.sealKey),
        t.registeredAt,
        t.firstSeen,
        t.lastSeen,
      );
      this.writtenAt.set(t.name, t.lastSeen);
    } catch (e) {
      this.pending.add(t.name);
      this.fault('write', e);
    }
  }

  /** Log the start of a fault (file, SQLite code, errno) once, and schedule the retries. */
  private fault(what: 'open' | 'write', e: unknown): void {
    this.stats.failedWrites++;
    this.dropConnection();
    if (!this.stats.faulty) {
      this.stats.faulty = true;
      this.log.error(
        { ...writeFault(this.path, e), op: what },
        'trust file not written: trusted keys kept in memory, retrying until the disk takes them',
      );
    }
    this.scheduleRetry();
  }

  /**
   * Close the file after a refused write: SQLite opens a file it may not write read-only and keeps it
   * so, so the retries open it again. Nothing is lost: every key is in memory.
   */
  private dropConnection(): void {
    try {
      this.db?.close();
    } catch {
      // Already unusable.
    }
    this.db = undefined;
    this.upsertRow = undefined;
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = this.clock.setTimer(this.retryMs, () => {
      this.retryTimer = undefined;
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
      this.retry();
    });
  }

  /** Open the file if it was not, then write every refused row in one transaction. True when all are on disk. */
  retry(): boolean {
    if (this.closed) return false;
    try {
      if (!this.db) this.openWritable();
      const db = this.db as Database.Database;
      const upsert = this.upsertRow as Database.Statement;
      const rows = [...this.pending].map((n) => this.cache.get(n)).filter((t) => t !== undefined);
      db.transaction(() => {
        for (const t of rows)
          upsert.run(t.name, Buffer.from(t.signKey), Buffer.from(t.sealKey), t.registeredAt, t.firstSeen, t.lastSeen);
      })();
      for (const t of rows) this.writtenAt.set(t.name, t.lastSeen);
      this.pending.clear();
    } catch (e) {
      this.stats.failedWrites++;
      this.dropConnection();
      this.log.debug({ file: this.path, err: (e as Error).message }, 'trust file still not writable');
      this.scheduleRetry();
      return false;
    }
    if (this.stats.faulty) {
      this.stats.faulty = false;
      this.stats.recoveries++;
      this.log.info({ file: this.path }, 'trust file writable again; trusted keys written');
    }
    this.retryMs = RETRY_FIRST_MS;
    return true;
  }

  /**
   * Decide about a bundle that mismatches: the bootstrap's view (`authority`)
   * must name exactly this new key and a registration time later than the one
   * we trusted; otherwise the old trust stands.
   */
  reRegistered(b: UserKeyBundle, authority: UserKeyBundle): boolean {
    const t = this.get(b.name);
    if (!t) return false;
    return (
      authority.name === b.name &&
      bytesEqual(authority.signKey, b.signKey) &&
      bytesEqual(authority.sealKey, b.sealKey) &&
      authority.registeredAt > t.registeredAt
    );
  }

  close(): void {
    if (this.closed) return;
    for (const name of this.dirty) if (this.cache.has(name)) this.pending.add(name);
    this.dirty.clear();
    if (this.pending.size > 0 && !this.retry())
      this.log.error({ file: this.path, unwritten: this.pending.size }, 'trust file not written at close');
    this.closed = true;
    this.retryTimer?.cancel();
    if (this.db?.open) this.db.close();
  }
}
