/**
 * The name registry shared by every bootstrap of a set, on PostgreSQL
 * (`secp2psip bootstrap --registry postgres://...`). Any bootstrap admits any
 * name: uniqueness is the database's primary key on the name, checked and
 * bound inside one transaction (INSERT ... ON CONFLICT DO NOTHING), so of two
 * bootstraps binding one name at the same moment exactly one wins and the
 * other reads the winner's key (first come, first served, as with one file).
 *
 * What limits new names is counted here too, in the claim's transaction, so
 * that every bootstrap sees the same counts and an adapter cannot multiply
 * its allowance by asking each bootstrap in turn: the per-adapter total
 * (registry_node_names), enrolment tokens (registry_invites) and the
 * per-minute rates per adapter key and per source address
 * (registry_name_rates: token buckets on the database's clock, so that the
 * bootstraps' clocks need not agree). Every check is an atomic upsert whose
 * result decides; a refusal rolls the whole transaction back, so nothing is
 * spent for a name that is not bound.
 *
 * The database may go away: a request then fails with REGISTRY_UNAVAILABLE
 * (the phone gets 503 with Retry-After), and the pool opens new connections
 * once it is back. Calls never touch the registry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type pg from 'pg';
import { bytesEqual } from '../util/bytes.ts';
import { OverlayError } from '../util/errors.ts';
import { silentLogger } from '../util/log.ts';
import type { NameRegistry, PublishRecords } from './name-registry.ts';
import type { ClaimOutcome, NewNamePolicy, RegistryEntry } from './registry.ts';
import {
  type PgConnectionOptions,
  PgConnections,
  PG_URL_RE,
  redactUrl,
  TxAnswer,
  TxRunAgain,
} from './registry-pg-pool.ts';
import { migrate } from './registry-pg-schema.ts';

export { PG_URL_RE, redactUrl };

function inviteHash(token: string): Buffer {
  return createHash('sha256').update('secp2psip/invite/v1\0').update(token).digest();
}

interface PgUserRow {
  name: string;
  sign_key: Buffer;
  seal_key: Buffer;
  registered_at: string;
  updated_at: string;
  cert_fpr: string | null;
  location: Buffer | null;
  pieces: Buffer | null;
  state: string;
}

function toEntry(r: PgUserRow): RegistryEntry {
  const e: RegistryEntry = {
    name: r.name,
    signKey: new Uint8Array(r.sign_key),
    sealKey: new Uint8Array(r.seal_key),
    registeredAt: Number(r.registered_at),
    updatedAt: Number(r.updated_at),
  };
  if (r.cert_fpr) e.certFingerprint = r.cert_fpr;
  if (r.location) e.location = new Uint8Array(r.location);
  if (r.pieces) {
    const p = cborDecode(new Uint8Array(r.pieces)) as unknown;
    if (Array.isArray(p) && p.every((x) => x instanceof Uint8Array)) e.pieces = p;
  }
  if (r.state === 'pending') e.state = 'pending';
  return e;
}

/** Thrown inside claim's transaction to roll it back and refuse the name. */
class Refusal extends TxAnswer<ClaimOutcome> {}

/** The database's clock in ms: token buckets shared by bootstraps need one clock. */
const DB_NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)';

export class PgRegistry implements NameRegistry {
  readonly shared = true;
  readonly countsRates = true;
  readonly url: string;
  private readonly db: PgConnections;

  private constructor(url: string, o: PgConnectionOptions) {
    this.url = url;
    this.db = new PgConnections(url, o);
  }

  /**
   * Connect, create or migrate the schema (registry-pg-schema.ts), and return the registry. Throws one
   * line: REGISTRY_UNAVAILABLE when the database cannot be reached, BAD_CONFIG on a newer schema.
   */
  static async open(url: string, o: PgConnectionOptions = {}): Promise<PgRegistry> {
    if (!PG_URL_RE.test(url))
      throw new OverlayError('BAD_ARGUMENT', `--registry must be a postgres:// connection string, got '${url}'`);
    const r = new PgRegistry(url, o);
    const log = (o.logger ?? silentLogger).child({ component: 'registry-pg' });
    await r.db.start(async (c) => {
      const m = await migrate(c);
      if (m.from !== m.to) log.info({ from: m.from, to: m.to }, 'registry database schema migrated');
    });
    return r;
  }

  async get(name: string): Promise<RegistryEntry | undefined> {
    const r = await this.db.query<PgUserRow>('SELECT * FROM registry_users WHERE name = $1', [name]);
    return r.rows[0] ? toEntry(r.rows[0]) : undefined;
  }

  async claim(
    name: string,
    keys: { signKey: Uint8Array; sealKey: Uint8Array },
    now: number,
    certFingerprint?: string,
    policy?: NewNamePolicy,
    records?: PublishRecords,
  ): Promise<ClaimOutcome> {
    return (await this.db.tx(async (c): Promise<ClaimOutcome> => {
      const cur = await c.query<PgUserRow>('SELECT * FROM registry_users WHERE name = $1 FOR UPDATE', [name]);
      if (cur.rows[0]) {
        const e = toEntry(cur.rows[0]);
        if (!bytesEqual(e.signKey, keys.signKey) || !bytesEqual(e.sealKey, keys.sealKey))
          return { outcome: 'taken', entry: e };
        const u = records
          ? await c.query<PgUserRow>(
              `UPDATE registry_users SET updated_at = $2, location = $3, state = 'pending', publish_at = $2
               WHERE name = $1 RETURNING *`,
              [name, now, Buffer.from(records.location)],
            )
          : await c.query<PgUserRow>('UPDATE registry_users SET updated_at = $2 WHERE name = $1 RETURNING *', [
              name,
              now,
            ]);
        return { outcome: 'same', entry: toEntry(u.rows[0]) };
      }
      // The primary key decides: of two transactions inserting the name, the second waits for the first
      // and inserts nothing; it then runs again and reads the winner's row.
      const ins = await c.query<PgUserRow>(
        `INSERT INTO registry_users
           (name, sign_key, seal_key, registered_at, updated_at, cert_fpr, location, pieces, state, publish_at)
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $4)
         ON CONFLICT (name) DO NOTHING RETURNING *`,
        [
          name,
          Buffer.from(keys.signKey),
          Buffer.from(keys.sealKey),
          now,
          certFingerprint ?? null,
          records ? Buffer.from(records.location) : null,
          records ? Buffer.from(cborEncode(records.pieces)) : null,
          records ? 'pending' : 'published',
        ],
      );
      if (!ins.rows[0]) throw new TxRunAgain();
      if (policy) await this.admitNewName(c, name, now, policy);
      return { outcome: 'created', entry: toEntry(ins.rows[0]) };
    })) as ClaimOutcome;
  }

  /** Inside claim's transaction, after the insert: spend what a new name needs, or throw a Refusal. */
  private async admitNewName(c: pg.PoolClient, name: string, now: number, p: NewNamePolicy): Promise<void> {
    const nodeKey = Buffer.from(p.nodeKey);
    const bound = await c.query<{ names: number }>(
      `INSERT INTO registry_node_names AS n (node_key, names) VALUES ($1, 1)
       ON CONFLICT (node_key) DO UPDATE SET names = n.names + 1 RETURNING names`,
      [nodeKey],
    );
    if (p.maxPerNode && bound.rows[0].names > p.maxPerNode)
      throw new Refusal({
        outcome: 'refused',
        code: 'USER_NAME_QUOTA',
        reason: `this adapter has bound its ${p.maxPerNode} new names; ask the bootstrap's operator`,
      });
    if (p.requireInvite) {
      if (p.invite === undefined)
        throw new Refusal({
          outcome: 'refused',
          code: 'USER_INVITE_INVALID',
          reason: 'a new name needs an enrolment token',
        });
      const spent = await c.query(
        `UPDATE registry_invites SET used_by = $2, used_at = $3
         WHERE hash = $1 AND used_by IS NULL AND expires_at > $3 AND (name IS NULL OR name = $2) RETURNING hash`,
        [inviteHash(p.invite), name, now],
      );
      if (spent.rowCount !== 1) {
        const row = (
          await c.query<{ name: string | null; expires_at: string; used_by: string | null }>(
            'SELECT name, expires_at, used_by FROM registry_invites WHERE hash = $1',
            [inviteHash(p.invite)],
          )
        ).rows[0];
        const why = !row
          ? 'unknown token'
          : row.used_by !== null
            ? 'token already used'
            : Number(row.expires_at) <= now
              ? 'token expired'
              : 'token is for another name';
        throw new Refusal({ outcome: 'refused', code: 'USER_INVITE_INVALID', reason: why });
      }
    }
    if (p.rates) {
      const node = Buffer.from(p.nodeKey).toString('hex');
      const waits = [
        await this.takeToken(c, `node:${node}`, p.rates.perMinute),
        await this.takeToken(c, `addr:${p.rates.source}`, p.rates.perAddressPerMinute),
      ];
      const wait = Math.max(...waits);
      if (wait > 0) {
        const retryAfterS = Math.min(3600, Math.max(1, Math.ceil(wait / 1000)));
        throw new Refusal({
          outcome: 'refused',
          code: 'USER_NAME_RATE',
          reason: `too many new names from this adapter; retry after ${retryAfterS} s`,
        });
      }
    }
  }

  /**
   * One token of a per-minute bucket (a burst of `perMinute`, refilled evenly), in one atomic upsert on
   * the database's clock. Returns 0 when taken, else the ms until one is there (the caller rolls back).
   */
  private async takeToken(c: pg.PoolClient, subject: string, perMinute: number | undefined): Promise<number> {
    if (!perMinute) return 0;
    const perMs = perMinute / 60_000;
    const r = await c.query<{ tokens: number }>(
      `INSERT INTO registry_name_rates AS r (subject, tokens, at) VALUES ($1, $2 - 1, ${DB_NOW_MS})
       ON CONFLICT (subject) DO UPDATE
         SET tokens = LEAST($2::float8, r.tokens + GREATEST(0, ${DB_NOW_MS} - r.at) * $3) - 1, at = ${DB_NOW_MS}
       RETURNING tokens`,
      [subject, perMinute, perMs],
    );
    const tokens = Number(r.rows[0].tokens);
    return tokens >= 0 ? 0 : -tokens / perMs;
  }

  async setPieces(name: string, pieces: Uint8Array[]): Promise<void> {
    await this.db.query('UPDATE registry_users SET pieces = $2 WHERE name = $1', [
      name,
      Buffer.from(cborEncode(pieces)),
    ]);
  }

  async markPublished(name: string, location: Uint8Array, now: number): Promise<void> {
    await this.db.query(
      `UPDATE registry_users SET state = 'published', publish_at = $3 WHERE name = $1 AND location = $2`,
      [name, Buffer.from(location), now],
    );
  }

  /** Rows of `state` put before `olderThan`, taken for this bootstrap (SKIP LOCKED: another one takes others). */
  private async take(state: string, olderThan: number, now: number, limit: number): Promise<RegistryEntry[]> {
    const r = await this.db.query<PgUserRow>(
      `UPDATE registry_users SET publish_at = $3 WHERE name IN (
         SELECT name FROM registry_users WHERE state = $1 AND publish_at < $2
         ORDER BY publish_at LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [state, olderThan, now, limit],
    );
    return r.rows.map(toEntry);
  }

  pending(olderThan: number, now: number, limit: number): Promise<RegistryEntry[]> {
    return this.take('pending', olderThan, now, limit);
  }

  resealDue(olderThan: number, now: number, limit: number): Promise<RegistryEntry[]> {
    return this.take('published', olderThan, now, limit);
  }

  async release(name: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM registry_users WHERE name = $1', [name])).rowCount === 1;
  }

  async all(): Promise<RegistryEntry[]> {
    const r = await this.db.query<PgUserRow>('SELECT * FROM registry_users ORDER BY registered_at, name');
    return r.rows.map(toEntry);
  }

  /** A random id made when the schema was created: tells this database from another (registry-pg-witness.ts). */
  async databaseId(): Promise<string> {
    const r = await this.db.query<{ value: string }>(`SELECT value FROM registry_meta WHERE key = 'database_id'`);
    return r.rows[0]?.value ?? '';
  }

  async count(): Promise<number> {
    return Number((await this.db.query<{ c: string }>('SELECT count(*) AS c FROM registry_users')).rows[0].c);
  }

  /** How many names have been bound through a node key. */
  async namesBoundBy(nodeKey: Uint8Array): Promise<number> {
    const r = await this.db.query<{ names: number }>('SELECT names FROM registry_node_names WHERE node_key = $1', [
      Buffer.from(nodeKey),
    ]);
    return r.rows[0]?.names ?? 0;
  }

  async createInvites(count: number, now: number, expiresAt: number, name?: string): Promise<string[]> {
    const tokens = Array.from({ length: count }, () => randomBytes(18).toString('base64url'));
    await this.db.tx(async (c) => {
      for (const t of tokens)
        await c.query('INSERT INTO registry_invites (hash, name, created_at, expires_at) VALUES ($1, $2, $3, $4)', [
          inviteHash(t),
          name ?? null,
          now,
          expiresAt,
        ]);
    });
    return tokens;
  }

  /** Forget new-name rate buckets untouched for an hour (a bucket that old is full: the same as none). */
  async maintain(): Promise<void> {
    await this.db.query(`DELETE FROM registry_name_rates WHERE at < ${DB_NOW_MS} - 3600000`);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
