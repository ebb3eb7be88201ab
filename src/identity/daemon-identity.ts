/**
 * A daemon's node key is its identity: the bootstrap's key is what adapters
 * pin, a WhanauSIP node's key hash is its SIP address and what its friends
 * pin. So a data directory that holds state but no readable key is refused
 * (one line naming the file), never silently given a new key; a new key is
 * made only for a data directory that holds nothing yet.
 */
import { existsSync } from 'node:fs';
import { dataFileError } from '../util/data-file.ts';
import { OverlayError } from '../util/errors.ts';
import { Identity } from './identity.ts';

export interface MissingKeyPolicy {
  /** What a new key would break, for the error line. */
  consequence: string;
  /** How to start anyway (default: move the data directory aside). */
  override?: string;
  /** The operator asked for a new key although the directory holds state. */
  allowNew?: boolean;
}

/**
 * Load `file`, or create it when `state` (what the data directory already
 * holds, e.g. `['registry.sqlite (12 users)']`) is empty or the policy
 * allows a new key.
 */
export function loadDaemonIdentity(file: string, state: readonly string[], policy: MissingKeyPolicy): Identity {
  if (existsSync(file)) {
    try {
      return Identity.load(file);
    } catch (e) {
      const why = e instanceof OverlayError && e.reason ? e.reason : (e as Error).message;
      throw dataFileError(file, `unreadable key (${why.replace(`${file} `, '')})`, 'restore it from a backup');
    }
  }
  if (state.length > 0 && !policy.allowNew)
    throw dataFileError(
      file,
      `missing, but the data directory holds ${state.join(', ')}`,
      `restore the key from a backup (a new key would ${policy.consequence}), or ${policy.override ?? 'move the data directory aside to start as a new node'}`,
    );
  try {
    return Identity.loadOrCreate(file);
  } catch (e) {
    throw dataFileError(file, `cannot create the key: ${(e as Error).message}`);
  }
}
