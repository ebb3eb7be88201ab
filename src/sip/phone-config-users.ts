/**
 * Phone users declared in a daemon's config file (`[phone-users]`, name =
 * password), written into the data directory's phone users
 * (phone-credentials.ts) at start and on every reload. A running daemon reads
 * that file again within a second, so a changed password takes effect without
 * a restart and without touching registrations.
 *
 * Users added with `--add-user` are left alone. A user the config file
 * declared before and no longer does is removed: deleting a line must revoke
 * the phone, so the names the file manages are kept beside the users
 * (`config-phone-users.json`).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OverlayError } from '../util/errors.ts';
import { digestHa1 } from './digest.ts';
import { addPhoneUser, loadPhoneCredentials, removePhoneUser } from './phone-credentials.ts';

export const CONFIG_USERS_FILE = 'config-phone-users.json';

export interface PhoneUserChanges {
  /** Users added or given a new password. */
  set: string[];
  /** Users the config file no longer declares. */
  removed: string[];
}

/** Make the data directory's phone users match the config file's; returns what changed (names only). */
export function syncConfigPhoneUsers(dataDir: string, users: Record<string, string>): PhoneUserChanges {
  const managedPath = join(dataDir, CONFIG_USERS_FILE);
  const before = readManaged(managedPath);
  const changes: PhoneUserChanges = { set: [], removed: [] };
  for (const [name, password] of Object.entries(users)) {
    const creds = loadPhoneCredentials(dataDir);
    const have = creds.ha1(name);
    // Compared by HA1: the file keeps no password, and rewriting an unchanged one would only churn the file.
    if (have && have['SHA-256'] === digestHa1(name, creds.realm, password)['SHA-256']) continue;
    addPhoneUser(dataDir, name, password);
    changes.set.push(name);
  }
  for (const name of before)
    if (!Object.hasOwn(users, name) && removePhoneUser(dataDir, name)) changes.removed.push(name);
  const tmp = `${managedPath}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(Object.keys(users).sort())}\n`, { mode: 0o600 });
    renameSync(tmp, managedPath);
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot write ${managedPath}: ${(e as Error).message}`);
  }
  return changes;
}

function readManaged(path: string): string[] {
  if (!existsSync(path)) return [];
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    // A damaged list only means no user is removed this time; the users themselves are in phone-users.json.
    return [];
  }
}
