/**
 * The data directories of a bootstrap and an adapter, opened and checked
 * before any port is bound. Each returns the handles the daemon needs or
 * throws one line naming the file, the cause and the recovery command (the
 * `secp2psip` command turns it into an exit with that line).
 *
 * - A file that is not a database, or a table of the wrong shape, is fatal.
 * - A node key that is missing or unreadable while the directory holds state
 *   is fatal: a new key would be a new identity (identity/daemon-identity.ts).
 * - The bootstrap's registry is the source of truth for names: empty or gone
 *   while its witness says it had users, it is refused (a bootstrap started
 *   on an empty registry hands every existing name to whoever asks first),
 *   unless the operator says `--accept-empty-registry`.
 * - A disk that refuses writes is not fatal for an adapter: its trust store
 *   keeps its state in memory and catches up when the disk works again.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDaemonIdentity } from '../identity/daemon-identity.ts';
import { Identity } from '../identity/identity.ts';
import { checkSqliteFile, dataFileError } from '../util/data-file.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { REGISTRY_TABLES, Registry, readRegistryWitness } from './registry.ts';
import { TRUST_TABLES, TrustStore } from './trust-store.ts';

export const REGISTRY_FILE = 'registry.sqlite';
export const REGISTRY_WITNESS = 'registry.users';
export const TRUST_FILE = 'trust.sqlite';
const NODE_KEY = join('node', 'identity.pem');
/** The ring port an adapter without `--rpc` chose on its first start, taken again on the next ones. */
export const RING_PORT_FILE = 'ring-port';

/** The data directory itself, created 0700; a path that cannot be one is a one-line error. */
export function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw dataFileError(dir, `cannot be used as the data directory: ${(e as Error).message}`);
  }
}

export interface BootstrapData {
  identity: Identity;
  registry: Registry;
  /** Set when the operator accepted starting with no users although the registry had some. */
  acceptedEmpty?: { hadUsers: number };
}

/** Open a bootstrap's data directory: node key and registry, checked (see the module comment). */
export function openBootstrapData(dir: string, opts: { acceptEmptyRegistry?: boolean } = {}): BootstrapData {
  ensureDataDir(dir);
  const file = join(dir, REGISTRY_FILE);
  const witnessFile = join(dir, REGISTRY_WITNESS);
  const check = checkSqliteFile(
    file,
    REGISTRY_TABLES,
    `restore it from a backup (secp2psip bootstrap --data ${dir} --backup FILE makes one)`,
  );
  const users = check.rows.users ?? 0;
  const witness = readRegistryWitness(witnessFile);
  let acceptedEmpty: BootstrapData['acceptedEmpty'];
  // Evidence that the registry had users: its witness. (A node key alone is not: keys may be made
  // ahead of the first start, e.g. to hand every bootstrap of a set the others' keys.)
  if (users === 0 && witness && witness.users > 0) {
    if (!opts.acceptEmptyRegistry)
      throw dataFileError(
        file,
        `${registryState(file, check.exists)}, but this bootstrap had ${witness.users} registered users (${witnessFile})`,
        `restore it from a backup, or start with no users (every name free again) with secp2psip bootstrap --data ${dir} ... --accept-empty-registry`,
      );
    acceptedEmpty = { hadUsers: witness.users };
  }
  const state: string[] = [];
  if (users > 0) state.push(`${REGISTRY_FILE} (${users} users)`);
  else if ((check.rows.nodes ?? 0) > 0) state.push(`${REGISTRY_FILE} (${check.rows.nodes} admitted nodes)`);
  if (witness && state.length === 0) state.push(REGISTRY_WITNESS);
  const identity = loadDaemonIdentity(join(dir, NODE_KEY), state, {
    consequence:
      'be refused by every adapter that pinned this bootstrap and no longer match the ring records it signed',
  });
  let registry: Registry;
  try {
    registry = new Registry(file, { witness: witnessFile });
  } catch (e) {
    throw dataFileError(file, (e as Error).message);
  }
  return { identity, registry, acceptedEmpty };
}

function registryState(file: string, exists: boolean): string {
  if (exists) return 'holds no users';
  return existsSync(file) ? 'is empty (0 bytes)' : 'is missing';
}

export interface AdapterData {
  identity: Identity;
  trust: TrustStore;
}

/** What an adapter's data directory holds besides its node key (evidence that it ran before). */
function adapterState(dir: string, trustRows: number | undefined): string[] {
  const state: string[] = [];
  if (trustRows !== undefined) state.push(`${TRUST_FILE} (${trustRows} trusted users)`);
  const users = join(dir, 'users');
  if (existsSync(users)) {
    const keys = readdirSync(users).filter((f) => f.endsWith('.pem')).length;
    if (keys > 0) state.push(`users/ (${keys} user keys)`);
  }
  // Not bootstrap.json / bootstraps.json: the bootstrap's key pinned on first use and the set it named are no
  // part of this adapter's identity, and the first start with a bare `host:port` writes the pin before the key.
  if (existsSync(join(dir, 'bindings.sqlite'))) state.push('bindings.sqlite');
  return state;
}

/**
 * Open an adapter's data directory (or keep everything in memory without
 * one): node key and trust store, checked before any port is bound.
 */
export function openAdapterData(
  dir: string | undefined,
  logger: Logger = silentLogger,
  opts: { newNodeKey?: boolean } = {},
): AdapterData {
  if (!dir) {
    return { identity: Identity.generate(), trust: new TrustStore(':memory:') };
  }
  ensureDataDir(dir);
  const file = join(dir, TRUST_FILE);
  const check = checkSqliteFile(
    file,
    TRUST_TABLES,
    `move it aside to start with no trusted keys (every user is trusted on first use again)`,
  );
  const nodeKey = join(dir, NODE_KEY);
  const state = adapterState(dir, check.exists ? (check.rows.trusted ?? 0) : undefined);
  const hadKey = existsSync(nodeKey);
  // An adapter's node key is only its ring membership (user keys live in users/): the operator may
  // choose a new one, but it is never made silently beside existing state.
  const identity = loadDaemonIdentity(nodeKey, state, {
    consequence: 'make this adapter a new ring member',
    override: 'start with --new-node-key (user keys in users/ are kept)',
    allowNew: opts.newNodeKey,
  });
  if (!hadKey && state.length > 0)
    logger.warn({ file: nodeKey, state }, 'new node key made as asked; this adapter joins the ring as a new member');
  return { identity, trust: new TrustStore(file, { logger }) };
}

/**
 * `secp2psip bootstrap --data DIR --backup FILE`: an online copy of the
 * registry through SQLite's backup API, consistent even while the bootstrap
 * runs (WAL lets the copy read beside it). Returns the users copied.
 */
export async function backupRegistry(dir: string, to: string): Promise<number> {
  const file = join(dir, REGISTRY_FILE);
  const check = checkSqliteFile(file, REGISTRY_TABLES, 'nothing to back up from a damaged registry');
  if (!check.exists) throw dataFileError(file, 'no registry to back up');
  if (existsSync(to)) throw dataFileError(to, 'already exists; choose a new backup file');
  const registry = new Registry(file);
  try {
    return await registry.backup(to);
  } catch (e) {
    throw dataFileError(to, `backup failed: ${(e as Error).message}`);
  } finally {
    registry.close();
  }
}

/**
 * The ring port chosen on an earlier start, if any. An adapter that comes back on the same ring address is
 * the same ring member to everyone: the entries other nodes still hold for it (successor lists, fingers, the
 * location records of its users, callers' verified-user caches) are right again the moment it listens, instead
 * of pointing at a closed port until each is repaired. A missing or unreadable file means no remembered port.
 */
export function rememberedRingPort(dir: string | undefined): number | undefined {
  if (!dir) return undefined;
  try {
    const n = Number(readFileSync(join(dir, RING_PORT_FILE), 'utf8').trim());
    return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Keep the ring port for the next start; a disk that refuses the write costs only that (logged). */
export function rememberRingPort(dir: string | undefined, port: number, logger: Logger = silentLogger): void {
  if (!dir) return;
  try {
    writeFileSync(join(dir, RING_PORT_FILE), `${port}\n`, { mode: 0o600 });
  } catch (e) {
    logger.warn({ file: join(dir, RING_PORT_FILE), err: (e as Error).message }, 'ring port not remembered');
  }
}
