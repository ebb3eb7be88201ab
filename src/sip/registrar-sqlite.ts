/**
 * The registrar's bindings in SQLite, so a restarted element still knows
 * where each phone is (RFC 3261 10.3 leaves the location service's storage to
 * the implementation). One row per binding; written as the registrar changes
 * them (registrar.ts `BindingStore`), read once at start.
 *
 * A binding's flow is kept when it survives a restart (a UDP address and port,
 * stored-flow.ts) in the `flow` column, added to a file written before flows
 * were kept when it is opened (its rows have no flow, as they had before).
 *
 * A binding is soft state: a phone refreshes it by itself. So a damaged row
 * is reported and removed, and a file that is not a database at all is moved
 * aside and replaced by an empty one, never stopping the element from starting.
 * A disk that does not let the file be opened for writing (read-only data
 * directory) is not fatal either: the bindings it holds are read, kept in
 * memory with the new ones, and written to the file once it can be opened.
 */
import { existsSync, renameSync } from 'node:fs';
import Database from 'better-sqlite3';
import { readSqliteFile } from '../util/data-file.ts';
import type { Logger } from '../util/log.ts';
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
    flow TEXT,
    PRIMARY KEY (aor, contact_key)
  );
`;

const COLUMNS = ['aor', 'contact_key', 'contact', 'call_id', 'cseq', 'expires_at'];
/** Every column, in the order the copies between file and memory use. */
const ALL = [...COLUMNS, 'flow'].join(', ');
const INSERT_ALL = `INSERT OR REPLACE INTO bindings (${ALL}) VALUES (?, ?, ?, ?, ?, ?, ?)`;

export interface LoadedBindings {
  rows: StoredBinding[];
  /** Rows whose columns have the wrong types (removed), with why. */
  bad: Array<{ aor: string; reason: string }>;
  /** Set when the file could not be opened as a database and was moved here. */
  movedAside?: string;
  /** Set when the disk did not let the file be opened for writing: bindings are kept in memory meanwhile. */
  unavailable?: string;
}

/** SQLite's codes for a file that is damaged or not a database (anything else is the disk). */
const damaged = (e: unknown) => /^SQLITE_(NOTADB|CORRUPT|FORMAT)/.test(String((e as { code?: string })?.code));

/** Codes of a write the disk refused (read-only, full, I/O error), as opposed to a bad statement. */
const diskRefused = (e: unknown) =>
  /^SQLITE_(READONLY|CANTOPEN|IOERR|FULL)/.test(String((e as { code?: string })?.code));

/** How often a store kept in memory tries the file again (on its next write). */
const REOPEN_EVERY_MS = 5000;

export class SqliteBindingStore implements BindingStore {
  private readonly path: string;
  private db!: Database.Database;
  private readonly movedAside?: string;
  /** Why the file is not open for writing (the bindings live in memory meanwhile). */
  private unavailable?: string;
  private lastReopen = 0;
  private putRow!: Database.Statement;
  private removeRow!: Database.Statement;
  private removeAorRows!: Database.Statement;
  /** Writes that did not reach the disk (see `put`). */
  failedWrites = 0;

  private readonly now: () => number;

  /** `path` is a file, or ':memory:' for tests; `now` paces the retries of a file that refused writes. */
  constructor(path: string, opts: { now?: () => number } = {}) {
    this.path = path;
    this.now = opts.now ?? Date.now;
    let opened = SqliteBindingStore.open(path);
    if (!opened.db && damaged(opened.error)) {
      const aside = `${path}.corrupt-${Date.now()}`;
      renameSync(path, aside);
      for (const ext of ['-wal', '-shm']) if (existsSync(path + ext)) renameSync(path + ext, aside + ext);
      this.movedAside = aside;
      opened = SqliteBindingStore.open(path);
    }
    if (opened.db) this.use(opened.db);
    else {
      this.unavailable = (opened.error as Error)?.message ?? String(opened.error);
      this.lastReopen = this.now();
      this.use(SqliteBindingStore.inMemoryCopyOf(path));
    }
  }

  /** True while the bindings are kept in memory because the file cannot be written. */
  get inMemory(): boolean {
    return this.unavailable !== undefined;
  }

  private use(db: Database.Database): void {
    this.db = db;
    this.putRow = db.prepare(
      `INSERT INTO bindings (${ALL}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(aor, contact_key) DO UPDATE SET contact = excluded.contact, call_id = excluded.call_id,
         cseq = excluded.cseq, expires_at = excluded.expires_at, flow = excluded.flow`,
    );
    this.removeRow = db.prepare('DELETE FROM bindings WHERE aor = ? AND contact_key = ?');
    this.removeAorRows = db.prepare('DELETE FROM bindings WHERE aor = ?');
  }

  /** The database with its table, or the error that kept the file from being used. */
  private static open(path: string): { db?: Database.Database; error?: unknown } {
    let db: Database.Database | undefined;
    try {
      db = openDatabase(path);
      db.exec(SCHEMA);
      const have = (db.pragma('table_info(bindings)') as Array<{ name: string }>).map((c) => c.name);
      if (!COLUMNS.every((c) => have.includes(c)))
        // Another program's table under our name: as unusable as a file that is not a database.
        throw Object.assign(new Error('bindings table of another shape'), { code: 'SQLITE_FORMAT' });
      // A file written before flows were kept: its rows get no flow (NULL), as they had none.
      if (!have.includes('flow')) db.exec('ALTER TABLE bindings ADD COLUMN flow TEXT');
      return { db };
    } catch (error) {
      db?.close();
      return { error };
    }
  }

  /** An in-memory store holding what the file holds, read without writing to its directory. */
  private static inMemoryCopyOf(path: string): Database.Database {
    const mem = new Database(':memory:');
    mem.exec(SCHEMA);
    try {
      // Read by name: a file written before flows were kept (and not writable, so not migrated) has no flow column.
      const rows = readSqliteFile(
        path,
        (file) => file.prepare('SELECT * FROM bindings').all() as Array<Record<string, unknown>>,
      );
      const insert = mem.prepare(INSERT_ALL);
      for (const r of rows) insert.run(...COLUMNS.map((c) => r[c]), r.flow ?? null);
    } catch {
      // Nothing readable: the phones register again by themselves.
    }
    return mem;
  }

  /** While in memory, try the file again (at most every few seconds); the memory copy is the truth. */
  private reopen(): void {
    const now = this.now();
    if (now - this.lastReopen < REOPEN_EVERY_MS) return;
    this.lastReopen = now;
    const opened = SqliteBindingStore.open(this.path);
    if (!opened.db) return;
    const rows = this.db.prepare(`SELECT ${ALL} FROM bindings`).raw().all() as unknown[][];
    const file = opened.db;
    file.transaction(() => {
      file.prepare('DELETE FROM bindings').run();
      const insert = file.prepare(INSERT_ALL);
      for (const r of rows) insert.run(...r);
    })();
    this.db.close();
    this.unavailable = undefined;
    this.use(file);
  }

  /** Every stored row; rows with columns of the wrong type are removed and reported. */
  load(): LoadedBindings {
    const out: LoadedBindings = { rows: [], bad: [], movedAside: this.movedAside, unavailable: this.unavailable };
    const raw = this.db.prepare('SELECT rowid, * FROM bindings').all() as Array<Record<string, unknown>>;
    for (const r of raw) {
      const { aor, contact_key: key, contact, call_id: callId, cseq, expires_at: expiresAtWall, flow } = r;
      if (
        typeof aor === 'string' &&
        typeof key === 'string' &&
        typeof contact === 'string' &&
        typeof callId === 'string' &&
        typeof cseq === 'number' &&
        typeof expiresAtWall === 'number'
      ) {
        // The flow is checked by `Registrar.restore`, which skips (and reports) a row whose flow is malformed.
        out.rows.push({
          aor,
          key,
          contact,
          callId,
          cseq,
          expiresAtWall,
          flow: (flow ?? undefined) as string | undefined,
        });
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
    this.write('putRow', b.aor, b.key, b.contact, b.callId, b.cseq, Math.round(b.expiresAtWall), b.flow ?? null);
  }

  remove(aor: string, key: string): void {
    this.write('removeRow', aor, key);
  }

  removeAor(aor: string): void {
    this.write('removeAorRows', aor);
  }

  private write(which: 'putRow' | 'removeRow' | 'removeAorRows', ...params: unknown[]): void {
    try {
      if (this.unavailable !== undefined) this.reopen();
    } catch {
      // Still not writable: stay in memory, try again later.
    }
    try {
      this[which].run(...params);
    } catch (e) {
      this.failedWrites++;
      if (this.unavailable !== undefined || !diskRefused(e)) return;
      // The disk refuses writes: carry on in memory (the bindings so far included), try the file again later.
      const mem = new Database(':memory:');
      mem.exec(SCHEMA);
      const insert = mem.prepare(INSERT_ALL);
      for (const r of this.db.prepare(`SELECT ${ALL} FROM bindings`).raw().all() as unknown[][]) insert.run(...r);
      this.db.close();
      this.unavailable = (e as Error).message;
      this.lastReopen = this.now();
      this.use(mem);
      this[which].run(...params);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** The phone bindings kept in `path`; damaged rows or files are reported, never fatal (daemons with a data directory). */
export function openBindings(path: string, log: Logger): { store: SqliteBindingStore; rows: StoredBinding[] } {
  const store = new SqliteBindingStore(path);
  const loaded = store.load();
  if (loaded.movedAside) log.warn({ path, movedTo: loaded.movedAside }, 'bindings file unreadable; starting empty');
  if (loaded.unavailable)
    log.error({ path, err: loaded.unavailable }, 'bindings file not writable; kept in memory until it is');
  for (const b of loaded.bad) log.warn({ aor: b.aor, reason: b.reason }, 'stored phone binding skipped');
  return { store, rows: loaded.rows };
}
