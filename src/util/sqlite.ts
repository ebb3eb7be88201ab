import Database from 'better-sqlite3';

/**
 * Open (or create) a SQLite database the way every table of the product uses
 * it: write-ahead log, fsync at checkpoints. `:memory:` for tests.
 */
export function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}
