/**
 * The schema of a registry shared on PostgreSQL, as numbered migrations the
 * program applies itself at start (registry_migrations holds what was
 * applied). Append only: a released migration is never edited, a change is a
 * new one. Bootstraps starting together serialise on an advisory lock, so
 * each migration runs once; a database migrated by a newer program (a
 * version this one does not know) is refused rather than written with the
 * wrong assumptions.
 */
import type pg from 'pg';
import { OverlayError } from '../util/errors.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'names, quotas, enrolment tokens, new-name rates',
    sql: `
      CREATE TABLE registry_users (
        name TEXT PRIMARY KEY,
        sign_key BYTEA NOT NULL,
        seal_key BYTEA NOT NULL,
        registered_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        cert_fpr TEXT,
        location BYTEA,
        pieces BYTEA,
        state TEXT NOT NULL DEFAULT 'published' CHECK (state IN ('pending', 'published')),
        publish_at BIGINT NOT NULL DEFAULT 0
      );
      CREATE INDEX registry_users_publication ON registry_users (state, publish_at);
      CREATE TABLE registry_node_names (
        node_key BYTEA PRIMARY KEY,
        names INTEGER NOT NULL
      );
      CREATE TABLE registry_invites (
        hash BYTEA PRIMARY KEY,
        name TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_by TEXT,
        used_at BIGINT
      );
      CREATE TABLE registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO registry_meta (key, value) VALUES ('database_id', gen_random_uuid()::text);
      CREATE TABLE registry_name_rates (
        subject TEXT PRIMARY KEY,
        tokens DOUBLE PRECISION NOT NULL,
        at DOUBLE PRECISION NOT NULL
      );
    `,
  },
]);

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Any 64-bit constant: the advisory lock bootstraps take while migrating. */
const MIGRATION_LOCK = 0x5ec925_1b;

/**
 * Bring the database to SCHEMA_VERSION. Returns the version found and the one reached. Throws a
 * one-line BAD_CONFIG error on a newer schema.
 */
export async function migrate(client: pg.ClientBase): Promise<{ from: number; to: number }> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS registry_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const r = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM registry_migrations');
    const from = r.rows[0]?.v ?? 0;
    if (from > SCHEMA_VERSION)
      throw new OverlayError(
        'BAD_CONFIG',
        `the registry database has schema version ${from}, newer than this program's ${SCHEMA_VERSION}: upgrade secp2psip`,
      );
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO registry_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
    }
    await client.query('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  }
}
