/**
 * A WhanauSIP node's data directory: `identity.pem` (0600), `peers.sqlite`, and in the node role the phone
 * bindings (`bindings.sqlite`, written by the SIP side).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadDaemonIdentity } from '../identity/daemon-identity.ts';
import type { Identity } from '../identity/identity.ts';
import { checkSqliteFile, dataFileError } from '../util/data-file.ts';

/** The files of a node's data directory (the SIP side adds `bindings.sqlite` in the node role). */
export const PEERS_FILE = 'peers.sqlite';
export const BINDINGS_FILE = 'bindings.sqlite';
const PEER_TABLES = { peers: ['hash', 'addr', 'key', 'added'] } as const;

/**
 * Open and check a node's data directory before any port is bound: a
 * `peers.sqlite` that is not a database (or not this program's) and an
 * unreadable identity are one-line fatal errors naming the file, and a
 * missing identity beside existing state is refused: the key's hash is the
 * node's SIP address and what its friends pinned, so a new key would be a
 * different node. Returns the node's identity.
 */
export function openWhanauData(dataDir: string): Identity {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw dataFileError(dataDir, `cannot be used as the data directory: ${(e as Error).message}`);
  }
  const peers = checkSqliteFile(
    join(dataDir, PEERS_FILE),
    PEER_TABLES,
    'move it aside and give the node its --peer options again',
  );
  const state: string[] = [];
  if (peers.exists) state.push(`${PEERS_FILE} (${peers.rows.peers ?? 0} peers)`);
  if (existsSync(join(dataDir, BINDINGS_FILE))) state.push(BINDINGS_FILE);
  return loadDaemonIdentity(join(dataDir, 'identity.pem'), state, {
    consequence: "change this node's SIP address (sip:<hash of the key>) and be refused by every friend that pinned it",
  });
}
