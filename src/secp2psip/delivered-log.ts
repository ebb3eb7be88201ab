/**
 * The nonces of the messages an adapter delivered to its phones, on disk
 * (`<data>/delivered.sqlite`), so a stored message collected again after a
 * restart (the restart came between delivering it and emptying its slot) is
 * not delivered twice (mailbox.ts). Rows older than the longest a stored
 * message lives are dropped.
 */
import type Database from 'better-sqlite3';
import { openDatabase } from '../util/sqlite.ts';
import type { DeliveredLog } from './mailbox.ts';
import { MAILBOX_TTL_MS } from './mailbox-records.ts';

export class SqliteDeliveredLog implements DeliveredLog {
  private readonly db: Database.Database;
  private readonly hasStmt: Database.Statement;
  private readonly addStmt: Database.Statement;
  private readonly pruneStmt: Database.Statement;
  private adds = 0;

  constructor(path: string) {
    this.db = openDatabase(path);
    // A lost row would mean a message delivered twice: write it through before the slot is emptied.
    this.db.pragma('synchronous = FULL');
    this.db.exec('CREATE TABLE IF NOT EXISTS delivered (nonce BLOB PRIMARY KEY, at INTEGER NOT NULL)');
    this.hasStmt = this.db.prepare('SELECT 1 FROM delivered WHERE nonce = ?');
    this.addStmt = this.db.prepare('INSERT OR IGNORE INTO delivered (nonce, at) VALUES (?, ?)');
    this.pruneStmt = this.db.prepare('DELETE FROM delivered WHERE at < ?');
  }

  has(nonce: Uint8Array): boolean {
    return this.hasStmt.get(Buffer.from(nonce)) !== undefined;
  }

  add(nonce: Uint8Array, at: number): void {
    this.addStmt.run(Buffer.from(nonce), at);
    if (++this.adds % 1000 === 0) this.pruneStmt.run(at - MAILBOX_TTL_MS - 24 * 3600_000);
  }

  close(): void {
    this.db.close();
  }
}
