/**
 * New names in a bootstrap's own registry file (registry.ts): what binding a
 * free name spends besides the name, inside the claim's transaction. The
 * count of names bound through each adapter (node key), kept across restarts
 * for NewNameLimits.perAdapter, and one-time enrolment tokens (`secp2psip
 * bootstrap --invite`), of which only a hash is stored. The shared registry
 * does the same in PostgreSQL (registry-pg.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { ClaimOutcome, NewNamePolicy } from './registry.ts';

/** The stored form of an enrolment token: only its hash is kept. */
function inviteHash(token: string): Buffer {
  return createHash('sha256').update('secp2psip/invite/v1\0').update(token).digest();
}

/** Inside claim's transaction: check and spend what a new name needs; a refusal when it may not be bound. */
export function admitNewName(
  db: Database.Database,
  name: string,
  now: number,
  p: NewNamePolicy,
): ClaimOutcome | undefined {
  const nodeKey = Buffer.from(p.nodeKey);
  const bound = namesBoundBy(db, p.nodeKey);
  if (p.maxPerNode && bound >= p.maxPerNode)
    return {
      outcome: 'refused',
      code: 'USER_NAME_QUOTA',
      reason: `this adapter has bound its ${p.maxPerNode} new names; ask the bootstrap's operator`,
    };
  if (p.requireInvite) {
    if (p.invite === undefined)
      return { outcome: 'refused', code: 'USER_INVITE_INVALID', reason: `a new name needs an enrolment token` };
    const row = db.prepare('SELECT * FROM invites WHERE hash = ?').get(inviteHash(p.invite)) as
      | { name: string | null; expires_at: number; used_by: string | null }
      | undefined;
    const why = !row
      ? 'unknown token'
      : row.used_by !== null
        ? 'token already used'
        : row.expires_at <= now
          ? 'token expired'
          : row.name !== null && row.name !== name
            ? 'token is for another name'
            : undefined;
    if (why) return { outcome: 'refused', code: 'USER_INVITE_INVALID', reason: why };
    db.prepare('UPDATE invites SET used_by = ?, used_at = ? WHERE hash = ?').run(name, now, inviteHash(p.invite));
  }
  db.prepare(
    'INSERT INTO node_names (node_key, names) VALUES (?, 1) ON CONFLICT(node_key) DO UPDATE SET names = names + 1',
  ).run(nodeKey);
  return undefined;
}

/** How many names have been bound through a node key (kept across restarts). */
export function namesBoundBy(db: Database.Database, nodeKey: Uint8Array): number {
  const row = db.prepare('SELECT names FROM node_names WHERE node_key = ?').get(Buffer.from(nodeKey)) as
    | { names: number }
    | undefined;
  return row?.names ?? 0;
}

/**
 * Make `count` one-time enrolment tokens valid until `expiresAt` (for `name` only, when given). The
 * tokens are returned once; the registry keeps only their hashes.
 */
export function createInvites(
  db: Database.Database,
  count: number,
  now: number,
  expiresAt: number,
  name?: string,
): string[] {
  const out: string[] = [];
  const insert = db.prepare(
    'INSERT INTO invites (hash, name, created_at, expires_at, used_by, used_at) VALUES (?, ?, ?, ?, NULL, NULL)',
  );
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const token = randomBytes(18).toString('base64url');
      insert.run(inviteHash(token), name ?? null, now, expiresAt);
      out.push(token);
    }
  })();
  return out;
}
