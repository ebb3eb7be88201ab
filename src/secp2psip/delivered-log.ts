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
import { dataFileError, writeFault } from '../util/data-file.ts';
import type { Logger } from '../util/log.ts';
import { openDatabase } from '../util/sqlite.ts';
import { type DeliveredLog, MemoryDeliveredLog } from './mailbox.ts';
import { MAILBOX_TTL_MS } from './mailbox-records.ts';

export class SqliteDeliveredLog implements DeliveredLog {
  private readonly db: Database.Database;
  private readonly hasStmt: Database.Statement;
  private readonly addStmt: Database.Statement;
  private readonly pruneStmt: Database.Statement;
  /** Nonces the disk would not take. */
  private readonly unwritten = new MemoryDeliveredLog();
  private faultLogged = false;
  private adds = 0;

  constructor(
    private readonly path: string,
    private readonly log?: Logger,
  ) {
    try {
      this.db = openDatabase(path);
      // A lost row would mean a message delivered twice: written through before the slot is emptied.
      this.db.pragma('synchronous = FULL');
      this.db.exec('CREATE TABLE IF NOT EXISTS delivered (nonce BLOB PRIMARY KEY, at INTEGER NOT NULL)');
      this.hasStmt = this.db.prepare('SELECT 1 FROM delivered WHERE nonce = ?');
      this.addStmt = this.db.prepare('INSERT OR IGNORE INTO delivered (nonce, at) VALUES (?, ?)');
      this.pruneStmt = this.db.prepare('DELETE FROM delivered WHERE at < ?');
    } catch (e) {
      throw dataFileError(
        path,
        (e as Error).message,
        'move it aside (messages delivered before may be delivered again)',
      );
    }
  }

  has(nonce: Uint8Array): boolean {
    return this.unwritten.has(nonce) || this.hasStmt.get(Buffer.from(nonce)) !== undefined;
  }

  add(nonce: Uint8Array, at: number): void {
    try {
      this.addStmt.run(Buffer.from(nonce), at);
      if (++this.adds % 1000 === 0) this.pruneStmt.run(at - MAILBOX_TTL_MS - 24 * 3600_000);
    } catch (e) {
      this.unwritten.add(nonce, at);
      if (!this.faultLogged) this.log?.warn(writeFault(this.path, e), 'delivered messages kept in memory only');
      this.faultLogged = true;
    }
  }

  close(): void {
    this.db.close();
  }
}
