/**
 * The trusted social peers of a WhanauSIP node, persisted in SQLite under the
 * data directory (DESIGN principle 5). A peer is given as
 * `<hash>@host:port` (seed 003 section 4.7: `whanausip:public_key_hash@host:port`):
 * the hash pins the peer's key, since it is the SHA-1 of that key. The key
 * itself is learned from the first TLS handshake whose certificate hashes to
 * the pinned value, and kept so later connections pin it directly.
 */
import type Database from 'better-sqlite3';
import { parseAddr } from '../rpc/tls-dial.ts';
import { fail, ok, OverlayError, type Result } from '../util/errors.ts';
import { openDatabase } from '../util/sqlite.ts';

export interface PeerSpec {
  /** SHA-1 of the peer's Ed25519 key, 40 lowercase hex. */
  hash: string;
  /** `host:port` or `[v6]:port` of the peer's DHT listener. */
  addr: string;
}

export interface PeerEntry extends PeerSpec {
  /** Raw Ed25519 key once a handshake showed a key hashing to `hash`. */
  key?: Uint8Array;
  added: number;
}

const HASH_RE = /^[0-9a-fA-F]{40}$/;

/** Parse `<40-hex>@host:port` (also `[v6]:port`); never throws. */
export function parsePeerSpec(s: string): Result<PeerSpec> {
  const at = s.indexOf('@');
  if (at < 0) return fail(`peer '${s}' must be <hash>@host:port`);
  const hash = s.slice(0, at);
  if (!HASH_RE.test(hash)) return fail(`peer hash '${hash}' is not 40 hex digits`);
  const addr = s.slice(at + 1);
  if (!parseAddr(addr).ok) return fail(`peer address '${addr}' is not host:port`);
  return ok({ hash: hash.toLowerCase(), addr });
}

export function formatPeerSpec(p: PeerSpec): string {
  return `${p.hash}@${p.addr}`;
}

interface Row {
  hash: string;
  addr: string;
  key: Buffer | null;
  added: number;
}

export class PeerBook {
  private readonly db: Database.Database;

  /** `:memory:` keeps the book for this process only. */
  constructor(path: string) {
    this.db = openDatabase(path);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS peers (
        hash TEXT PRIMARY KEY,
        addr TEXT NOT NULL,
        key BLOB,
        added INTEGER NOT NULL
      );
    `);
  }

  /** Add a peer or move it to a new address; a key already learned stays pinned (the hash did not change). */
  upsert(spec: PeerSpec, nowMs: number): void {
    const p = parsePeerSpec(formatPeerSpec(spec));
    if (!p.ok) throw new OverlayError('BAD_ARGUMENT', p.error);
    this.db
      .prepare(
        'INSERT INTO peers (hash, addr, key, added) VALUES (?, ?, NULL, ?) ON CONFLICT(hash) DO UPDATE SET addr = excluded.addr',
      )
      .run(p.value.hash, p.value.addr, nowMs);
  }

  /** Remember the key a handshake proved for this peer (the caller checked that it hashes to `hash`). */
  setKey(hash: string, key: Uint8Array): void {
    this.db.prepare('UPDATE peers SET key = ? WHERE hash = ?').run(Buffer.from(key), hash);
  }

  remove(hash: string): boolean {
    return this.db.prepare('DELETE FROM peers WHERE hash = ?').run(hash.toLowerCase()).changes > 0;
  }

  get(hash: string): PeerEntry | undefined {
    const r = this.db.prepare('SELECT * FROM peers WHERE hash = ?').get(hash.toLowerCase()) as Row | undefined;
    return r ? toEntry(r) : undefined;
  }

  list(): PeerEntry[] {
    return (this.db.prepare('SELECT * FROM peers ORDER BY added, hash').all() as Row[]).map(toEntry);
  }

  close(): void {
    this.db.close();
  }
}

function toEntry(r: Row): PeerEntry {
  const e: PeerEntry = { hash: r.hash, addr: r.addr, added: r.added };
  if (r.key) e.key = new Uint8Array(r.key);
  return e;
}
