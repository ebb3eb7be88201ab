/**
 * The shared registry's witness, in each bootstrap's data directory
 * (`registry-shared.users`): which database the bootstrap used (the random id
 * the schema was created with) and how many users it held there. The danger
 * it guards against is the same as with one file (data-dir.ts), only more
 * likely: a `--registry` pointed at the wrong or a freshly created database,
 * or a database restored from nothing. A bootstrap started on it would hand
 * every existing name to whoever asks first; so a database that holds no
 * users while the witness says this bootstrap saw some, there or in another
 * database, is refused unless the operator says `--accept-empty-registry`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSecretFileAtomic } from '../identity/key-file.ts';
import { dataFileError } from '../util/data-file.ts';
import type { Logger } from '../util/log.ts';
import { type PgRegistry, redactUrl } from './registry-pg.ts';

export const SHARED_REGISTRY_WITNESS = 'registry-shared.users';

interface Witness {
  users: number;
  database: string;
}

function read(file: string): Witness | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<Witness>;
    return {
      users: typeof v.users === 'number' && v.users >= 0 ? v.users : 1,
      database: typeof v.database === 'string' ? v.database : '',
    };
  } catch {
    // A witness that cannot be read still says there was a registry with users.
    return { users: 1, database: '' };
  }
}

/** Record what the bootstrap sees in the database now (never fatal: the database holds the truth). */
export async function writeSharedWitness(dir: string, names: PgRegistry, log?: Logger): Promise<void> {
  try {
    const w: Witness = { users: await names.count(), database: await names.databaseId() };
    writeSecretFileAtomic(
      join(dir, SHARED_REGISTRY_WITNESS),
      `${JSON.stringify({ ...w, writtenAt: new Date().toISOString() })}\n`,
    );
  } catch (e) {
    log?.debug({ err: (e as Error).message }, 'shared registry witness not written; tried again later');
  }
}

/**
 * At start: refuse a database with no users when this bootstrap saw users before (see the module
 * comment). Returns how many users the witness had when the operator accepted an empty database.
 */
export async function checkSharedWitness(
  dir: string,
  names: PgRegistry,
  acceptEmpty: boolean,
): Promise<{ hadUsers: number } | undefined> {
  const file = join(dir, SHARED_REGISTRY_WITNESS);
  const w = read(file);
  if (!w || w.users === 0 || (await names.count()) > 0) return undefined;
  const other = w.database !== '' && w.database !== (await names.databaseId());
  if (!acceptEmpty)
    throw dataFileError(
      redactUrl(names.url),
      `holds no users, but this bootstrap saw ${w.users} registered users ${other ? 'in another database' : 'there'} (${file})`,
      `point --registry at the right database or restore it, or start with no users (every name free again) with --accept-empty-registry`,
    );
  return { hadUsers: w.users };
}
