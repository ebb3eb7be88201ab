/**
 * Trust on first use of callee (and caller) keys. The first key rebuilt from
 * the ring for a name is remembered; a different key later is refused unless
 * the bootstrap shows the name was re-registered after we first trusted it
 * (`accept` is then called by the adapter with the newer bundle).
 */
import type Database from 'better-sqlite3';
import type { UserKeyBundle } from './messages.ts';
import { openDatabase } from '../util/sqlite.ts';
import { bytesEqual } from '../util/bytes.ts';

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

export class TrustStore {
  private readonly db: Database.Database;
  private readonly cache = new Map<string, TrustedKey>();
  /** Names whose last_seen moved in memory only, with when the row was last written. */
  private readonly writtenAt = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly selectRow: Database.Statement;
  private readonly upsertRow: Database.Statement;

  constructor(path: string) {
    this.db = openDatabase(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS trusted (
        name TEXT PRIMARY KEY,
        sign_key BLOB NOT NULL,
        seal_key BLOB NOT NULL,
        registered_at INTEGER NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
      );
    `);
    this.selectRow = this.db.prepare('SELECT * FROM trusted WHERE name = ?');
    this.upsertRow = this.db.prepare(
      `INSERT INTO trusted (name, sign_key, seal_key, registered_at, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET sign_key = excluded.sign_key, seal_key = excluded.seal_key,
         registered_at = excluded.registered_at, first_seen = excluded.first_seen, last_seen = excluded.last_seen`,
    );
  }

  get(name: string): TrustedKey | undefined {
    const hit = this.cache.get(name);
    if (hit) return hit;
    const r = this.selectRow.get(name) as Row | undefined;
    if (!r) return undefined;
    const t: TrustedKey = {
      name: r.name,
      signKey: new Uint8Array(r.sign_key),
      sealKey: new Uint8Array(r.seal_key),
      registeredAt: r.registered_at,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
    };
    this.cache.set(name, t);
    return t;
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

  private write(t: TrustedKey): void {
    this.upsertRow.run(t.name, Buffer.from(t.signKey), Buffer.from(t.sealKey), t.registeredAt, t.firstSeen, t.lastSeen);
    this.cache.set(t.name, t);
    this.writtenAt.set(t.name, t.lastSeen);
    this.dirty.delete(t.name);
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
    if (!this.db.open) return;
    for (const name of this.dirty) {
      const t = this.cache.get(name);
      if (t) this.write(t);
    }
    this.db.close();
  }
}
