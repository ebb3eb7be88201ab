/**
 * The registrar's bindings in SQLite, so a restarted element still knows
 * where each phone is (RFC 3261 10.3 leaves the location service's storage to
 * the implementation). One row per binding; written as the registrar changes
 * them (registrar.ts `BindingStore`), read once at start.
 *
 * A binding is soft state: a phone refreshes it by itself. So a damaged row
 * is reported and removed, and a file that is not a database at all is moved
 * aside and replaced by an empty one, never stopping the element from starting.
 */
import { existsSync, renameSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { openDatabase } from '../util/sqlite.ts';
import type { BindingStore, StoredBinding } from './registrar.ts';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS bindings (
    aor TEXT NOT NULL,
    contact_key TEXT NOT NULL,
    contact TEXT NOT NULL,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (aor, contact_key)
  );
`;

export interface LoadedBindings {
  rows: StoredBinding[];
  /** Rows whose columns have the wrong types (removed), with why. */
  bad: Array<{ aor: string; reason: string }>;
  /** Set when the file could not be opened as a database and was moved here. */
  movedAside?: string;
}

export class SqliteBindingStore implements BindingStore {
  private readonly db: Database.Database;
  private readonly movedAside?: string;
  private readonly putRow: Database.Statement;
  private readonly removeRow: Database.Statement;
  private readonly removeAorRows: Database.Statement;
  /** Writes that did not reach the disk (see `put`). */
  failedWrites = 0;

  /** `path` is a file, or ':memory:' for tests. */
  constructor(path: string) {
    let opened = SqliteBindingStore.open(path);
    if (!opened) {
      const aside = `${path}.corrupt-${Date.now()}`;
      renameSync(path, aside);
      for (const ext of ['-wal', '-shm']) if (existsSync(path + ext)) renameSync(path + ext, aside + ext);
      this.movedAside = aside;
      opened = SqliteBindingStore.open(path);
      if (!opened) throw new Error(`cannot create ${path}`);
    }
    this.db = opened;
    this.putRow = this.db.prepare(
      `INSERT INTO bindings (aor, contact_key, contact, call_id, cseq, expires_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(aor, contact_key) DO UPDATE SET contact = excluded.contact, call_id = excluded.call_id,
         cseq = excluded.cseq, expires_at = excluded.expires_at`,
    );
    this.removeRow = this.db.prepare('DELETE FROM bindings WHERE aor = ? AND contact_key = ?');
    this.removeAorRows = this.db.prepare('DELETE FROM bindings WHERE aor = ?');
  }

  /** The database with its table, or undefined if the file is not a usable SQLite database. */
  private static open(path: string): Database.Database | undefined {
    let db: Database.Database | undefined;
    try {
      db = openDatabase(path);
      db.exec(SCHEMA);
      db.prepare('SELECT COUNT(*) FROM bindings').get();
      return db;
    } catch {
      db?.close();
      return undefined;
    }
  }

  /** Every stored row; rows with columns of the wrong type are removed and reported. */
  load(): LoadedBindings {
    const out: LoadedBindings = { rows: [], bad: [], movedAside: this.movedAside };
    const raw = this.db.prepare('SELECT rowid, * FROM bindings').all() as Array<Record<string, unknown>>;
    for (const r of raw) {
      const { aor, contact_key: key, contact, call_id: callId, cseq, expires_at: expiresAtWall } = r;
      if (
        typeof aor === 'string' &&
        typeof key === 'string' &&
        typeof contact === 'string' &&
        typeof callId === 'string' &&
        typeof cseq === 'number' &&
        typeof expiresAtWall === 'number'
      ) {
        out.rows.push({ aor, key, contact, callId, cseq, expiresAtWall });
        continue;
      }
      out.bad.push({ aor: String(aor), reason: 'column of the wrong type' });
      this.db.prepare('DELETE FROM bindings WHERE rowid = ?').run(r.rowid);
    }
    return out;
  }

  // A write that fails (disk full, database closed while a request was in flight) costs only
  // persistence of that binding; the registrar's answer stands, so the failure is counted, not thrown.
  put(b: StoredBinding): void {
    this.write(this.putRow, b.aor, b.key, b.contact, b.callId, b.cseq, Math.round(b.expiresAtWall));
  }

  remove(aor: string, key: string): void {
    this.write(this.removeRow, aor, key);
  }

  removeAor(aor: string): void {
    this.write(this.removeAorRows, aor);
  }

  private write(st: Database.Statement, ...params: unknown[]): void {
    try {
      st.run(...params);
    } catch {
      this.failedWrites++;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
