/**
 * Telling a damaged data file from a failing disk. A file that is not a
 * database, a table with the wrong columns or a garbage key is fatal at
 * start-up (one line naming the file, before any port is bound); a disk that
 * refuses writes (read-only, full, I/O error) is a fault to report with its
 * errno and to recover from once the disk works again.
 */
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { OverlayError } from './errors.ts';

/** SQLite result codes that say the file itself is damaged or is something else. */
const DAMAGED = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT', 'SQLITE_CORRUPT_VTAB', 'SQLITE_FORMAT']);

/** True when a SQLite or file-system error says the file's content is unusable (not the disk). */
export function isDamaged(e: unknown): boolean {
  const code = (e as { code?: string })?.code ?? '';
  return DAMAGED.has(code) || code.startsWith('SQLITE_CORRUPT');
}

/** The one-line fatal error for a data file: names the file, the cause and what to do. */
export function dataFileError(file: string, cause: string, remedy?: string): OverlayError {
  return new OverlayError('DATA_UNUSABLE', `${file}: ${cause}${remedy ? `; ${remedy}` : ''}`);
}

/**
 * What the disk says when asked to write next to `file`: the errno code of
 * creating, writing and removing a small probe file in its directory
 * (EROFS, ENOSPC, EACCES, EIO...), or undefined when that works. SQLite
 * reports a failed write as SQLITE_IOERR or SQLITE_READONLY; the operator
 * needs the errno.
 */
export function probeDisk(file: string): string | undefined {
  const probe = join(dirname(file), `.write-probe-${process.pid}`);
  try {
    const fd = openSync(probe, 'w', 0o600);
    try {
      writeSync(fd, Buffer.alloc(4096));
    } finally {
      closeSync(fd);
    }
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'EIO';
  } finally {
    rmSync(probe, { force: true });
  }
}

/** Log fields for a failed write: the file, SQLite's code and message, and the disk's errno. */
export function writeFault(file: string, e: unknown): Record<string, unknown> {
  const err = e as { code?: string; message?: string };
  return { file, code: err?.code, errno: probeDisk(file), err: err?.message ?? String(e) };
}

/**
 * Run `read` on an existing SQLite file without writing next to it. A
 * read-only open of a WAL database needs its -shm file, which a read-only
 * directory may not let SQLite create: then a copy of the file (with its
 * -wal) in the temporary directory is read instead.
 */
export function readSqliteFile<T>(file: string, read: (db: Database.Database) => T): T {
  const once = (f: string) => {
    const db = new Database(f, { readonly: true, fileMustExist: true });
    try {
      return read(db);
    } finally {
      db.close();
    }
  };
  try {
    return once(file);
  } catch (e) {
    if (isDamaged(e)) throw e;
    const dir = mkdtempSync(join(tmpdir(), 'sqlite-read-'));
    try {
      const copy = join(dir, 'copy.sqlite');
      copyFileSync(file, copy);
      if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
      return once(copy);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

export interface SqliteFileCheck {
  /** False when there is no file (or an empty one): nothing to check. */
  exists: boolean;
  /** Rows per checked table (tables that do not exist yet are absent). */
  rows: Record<string, number>;
}

/**
 * Open an existing SQLite file the way a daemon is about to, and check it
 * before any port is bound: it must be a database, and every table it
 * already has among `tables` must have at least the listed columns. Throws
 * the one-line DATA_UNUSABLE error otherwise. The file is only read (a
 * read-only data directory is a disk fault, handled by the store, not damage).
 */
export function checkSqliteFile(
  file: string,
  tables: Record<string, readonly string[]>,
  remedy: string,
): SqliteFileCheck {
  if (!existsSync(file) || statSync(file).size === 0) return { exists: false, rows: {} };
  try {
    const rows = readSqliteFile(file, (db) => {
      db.pragma('schema_version');
      const out: Record<string, number> = {};
      for (const [table, columns] of Object.entries(tables)) {
        const have = (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name);
        if (have.length === 0) continue;
        const missing = columns.filter((c) => !have.includes(c));
        if (missing.length > 0)
          throw dataFileError(
            file,
            `table ${table} lacks column ${missing.join(', ')} (not this program's file)`,
            remedy,
          );
        out[table] = (db.prepare(`SELECT COUNT(*) AS c FROM ${table}`).get() as { c: number }).c;
      }
      return out;
    });
    return { exists: true, rows };
  } catch (e) {
    if (e instanceof OverlayError) throw e;
    throw dataFileError(file, (e as Error).message, remedy);
  }
}
