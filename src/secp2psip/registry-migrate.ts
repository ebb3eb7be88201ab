/**
 * Copy a bootstrap's SQLite registry into a shared PostgreSQL registry
 * (`secp2psip registry migrate --from <file> --to postgres://...`): the names
 * with their keys, registration times, certificate fingerprints, pieces and
 * last location records; the per-adapter counts of names bound; the enrolment
 * tokens (hashes only, as stored). Ring ids stay in each bootstrap's own file.
 *
 * Idempotent, and never overwriting: a name already in the database with the
 * same keys is left as it is (counted `same`); with other keys it is a
 * conflict, reported and left as it is (first come, first served holds
 * across registries too); counts of names bound are raised to the file's,
 * never lowered; a token already there is left as it is. Running it twice
 * changes nothing the second time. Several bootstraps' files may be copied
 * in turn into one database.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { decode as cborDecode } from 'cborg';
import pg from 'pg';
import { bytesEqual } from '../util/bytes.ts';
import { checkSqliteFile, dataFileError } from '../util/data-file.ts';
import { OverlayError } from '../util/errors.ts';
import { PG_URL_RE, redactUrl } from './registry-pg.ts';
import { migrate } from './registry-pg-schema.ts';
import { REGISTRY_TABLES } from './registry.ts';

export interface MigrationReport {
  /** Names copied into the database. */
  copied: number;
  /** Names already there with the same keys. */
  same: number;
  /** Names already there with other keys: left as they are. */
  conflicts: string[];
  /** Adapters whose count of names bound was raised, and tokens copied. */
  nodeCounts: number;
  invites: number;
}

interface FileUser {
  name: string;
  sign_key: Buffer;
  seal_key: Buffer;
  registered_at: number;
  updated_at: number;
  cert_fpr: string | null;
  location: Buffer | null;
  pieces: Buffer | null;
}

/** Pieces as stored, if the file's column holds the encoding this program writes. */
function piecesOk(b: Buffer | null): Buffer | null {
  if (!b) return null;
  try {
    const p = cborDecode(new Uint8Array(b)) as unknown;
    return Array.isArray(p) && p.every((x) => x instanceof Uint8Array) ? b : null;
  } catch {
    return null;
  }
}

function readFile(file: string) {
  if (!existsSync(file)) throw dataFileError(file, 'no such registry file');
  const check = checkSqliteFile(file, REGISTRY_TABLES, 'give the registry.sqlite of a bootstrap');
  if (!check.exists) throw dataFileError(file, 'empty file: not a registry');
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const has = (t: string) => (db.pragma(`table_info(${t})`) as unknown[]).length > 0;
    return {
      users: has('users') ? (db.prepare('SELECT * FROM users ORDER BY registered_at, name').all() as FileUser[]) : [],
      nodeNames: has('node_names')
        ? (db.prepare('SELECT node_key, names FROM node_names').all() as { node_key: Buffer; names: number }[])
        : [],
      invites: has('invites')
        ? (db.prepare('SELECT * FROM invites').all() as {
            hash: Buffer;
            name: string | null;
            created_at: number;
            expires_at: number;
            used_by: string | null;
            used_at: number | null;
          }[])
        : [],
    };
  } finally {
    db.close();
  }
}

/** Copy `file` into the database at `url` in one transaction (all or nothing). */
export async function migrateRegistry(file: string, url: string): Promise<MigrationReport> {
  if (!PG_URL_RE.test(url))
    throw new OverlayError('BAD_ARGUMENT', `--to must be a postgres:// connection string, got '${url}'`);
  const src = readFile(file);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  // A server that vanishes mid-copy fails the query being run; the event must not end the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    throw new OverlayError('REGISTRY_UNAVAILABLE', `cannot reach ${redactUrl(url)}: ${(e as Error).message}`);
  }
  const out: MigrationReport = { copied: 0, same: 0, conflicts: [], nodeCounts: 0, invites: 0 };
  try {
    await migrate(client);
    await client.query('BEGIN');
    for (const u of src.users) {
      const ins = await client.query(
        `INSERT INTO registry_users
           (name, sign_key, seal_key, registered_at, updated_at, cert_fpr, location, pieces, state, publish_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'published', 0)
         ON CONFLICT (name) DO NOTHING`,
        [u.name, u.sign_key, u.seal_key, u.registered_at, u.updated_at, u.cert_fpr, u.location, piecesOk(u.pieces)],
      );
      if (ins.rowCount === 1) {
        out.copied++;
        continue;
      }
      const have = await client.query<{ sign_key: Buffer; seal_key: Buffer }>(
        'SELECT sign_key, seal_key FROM registry_users WHERE name = $1',
        [u.name],
      );
      const h = have.rows[0];
      if (h && bytesEqual(h.sign_key, u.sign_key) && bytesEqual(h.seal_key, u.seal_key)) out.same++;
      else out.conflicts.push(u.name);
    }
    for (const n of src.nodeNames) {
      const r = await client.query(
        `INSERT INTO registry_node_names AS t (node_key, names) VALUES ($1, $2)
         ON CONFLICT (node_key) DO UPDATE SET names = EXCLUDED.names WHERE t.names < EXCLUDED.names`,
        [n.node_key, n.names],
      );
      out.nodeCounts += r.rowCount ?? 0;
    }
    for (const i of src.invites) {
      const r = await client.query(
        `INSERT INTO registry_invites (hash, name, created_at, expires_at, used_by, used_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (hash) DO NOTHING`,
        [i.hash, i.name, i.created_at, i.expires_at, i.used_by, i.used_at],
      );
      out.invites += r.rowCount ?? 0;
    }
    await client.query('COMMIT');
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    if (e instanceof OverlayError) throw e;
    throw new OverlayError('REGISTRY_UNAVAILABLE', `migrating into ${redactUrl(url)}: ${(e as Error).message}`);
  } finally {
    await client.end().catch(() => {});
  }
}
