/**
 * The nonces of the messages an adapter delivered to its phones, on disk
 * (`<data>/delivered.sqlite`), so a stored message collected again after a
 * restart (the restart came between delivering it and emptying its slot) is
 * not delivered twice (mailbox.ts). Rows older than the longest a stored
 * message lives are dropped.
 *
 * A disk that refuses writes is not fatal (as for the adapter's other files,
 * docs/design.md "Data-file safety"): the nonce is kept in memory, the fault
 * logged once; a damaged file at start is a one-line fatal error.
 */
import type Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { dataFileError, isDamaged, readSqliteFile, writeFault } from '../util/data-file.ts';
import type { Logger } from '../util/log.ts';
import { openDatabase } from '../util/sqlite.ts';
import { type DeliveredLog, MemoryDeliveredLog } from './mailbox.ts';
import { MAILBOX_TTL_MS } from './mailbox-records.ts';

export class SqliteDeliveredLog implements DeliveredLog {
  private db?: Database.Database;
  private hasStmt?: Database.Statement;
  private addStmt?: Database.Statement;
  private pruneStmt?: Database.Statement;
  /** Nonces the disk would not take, and those read from a file that could not be opened for writing. */
  private readonly unwritten = new MemoryDeliveredLog();
  private faultLogged = false;
  private adds = 0;
  /** When to try opening the file for writing again after the disk refused (the callers' wall clock, ms). */
  private retryAt = 0;

  constructor(
    private readonly path: string,
    private readonly log?: Logger,
  ) {
    try {
      this.openWritable();
    } catch (e) {
      if (isDamaged(e))
        throw dataFileError(
          path,
          (e as Error).message,
          'move it aside (messages delivered before may be delivered again)',
        );
      // The disk refuses (a read-only directory, no space): read what the file holds, write later.
      this.preload();
      this.fault(e, 0);
    }
  }

  private openWritable(): void {
    const db = openDatabase(this.path);
    try {
      // A lost row would mean a message delivered twice: written through before the slot is emptied.
      db.pragma('synchronous = FULL');
      db.exec('CREATE TABLE IF NOT EXISTS delivered (nonce BLOB PRIMARY KEY, at INTEGER NOT NULL)');
      this.hasStmt = db.prepare('SELECT 1 FROM delivered WHERE nonce = ?');
      this.addStmt = db.prepare('INSERT OR IGNORE INTO delivered (nonce, at) VALUES (?, ?)');
      this.pruneStmt = db.prepare('DELETE FROM delivered WHERE at < ?');
    } catch (e) {
      db.close();
      throw e;
    }
    this.db = db;
  }

  /** The nonces of a file that exists but cannot be written, into memory (a damaged one is fatal). */
  private preload(): void {
    if (!existsSync(this.path)) return;
    try {
      const rows = readSqliteFile(this.path, (db) => db.prepare('SELECT nonce, at FROM delivered').all()) as {
        nonce: Buffer;
        at: number;
      }[];
      for (const r of rows) this.unwritten.add(new Uint8Array(r.nonce), r.at);
    } catch (e) {
      throw dataFileError(
        this.path,
        (e as Error).message,
        'move it aside (messages delivered before may be delivered again)',
      );
    }
  }

  private fault(e: unknown, at: number): void {
    if (!this.faultLogged) this.log?.warn(writeFault(this.path, e), 'delivered messages kept in memory only');
    this.faultLogged = true;
    this.retryAt = at + 10_000;
  }

  has(nonce: Uint8Array): boolean {
    return this.unwritten.has(nonce) || this.hasStmt?.get(Buffer.from(nonce)) !== undefined;
  }

  add(nonce: Uint8Array, at: number): void {
    if (!this.db && at >= this.retryAt) {
      // The disk may work again: from now on nonces go to the file (those kept in memory stay there).
      try {
        this.openWritable();
        this.log?.info({ file: this.path }, 'delivered messages written to disk again');
        this.faultLogged = false;
      } catch (e) {
        this.fault(e, at);
      }
    }
    try {
      if (!this.addStmt) throw new Error('not open for writing');
      this.addStmt.run(Buffer.from(nonce), at);
      if (++this.adds % 1000 === 0) this.pruneStmt?.run(at - MAILBOX_TTL_MS - 24 * 3600_000);
    } catch (e) {
      this.unwritten.add(nonce, at);
      if (this.db) this.fault(e, at);
    }
  }

  close(): void {
    this.db?.close();
  }
}
