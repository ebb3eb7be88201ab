/**
 * The phone users of an adapter or WhanauSIP node: `phone-users.json` in the
 * data directory, mode 0600, written whole to a temporary file and renamed.
 *
 * What is stored is HA1 = H(user ":" realm ":" password) for SHA-256 and for
 * MD5, never the password: digest authentication (RFC 2617 3.2.2.2) needs
 * exactly HA1 to check a phone's response, so a slow password hash (scrypt)
 * could not be checked against what the phone sends. HA1 is salted by the
 * user name and by the realm, which is drawn at random per data directory, so
 * a stolen file says nothing about the same password elsewhere; it still lets
 * its holder log in here, hence 0600.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import {
  type DigestAlgorithm,
  DigestAuthenticator,
  type DigestCredentials,
  type DigestHa1,
  digestHa1,
  type PhoneAuth,
} from './digest.ts';

export const PHONE_USERS_FILE = 'phone-users.json';
/** A digest user name: what a phone puts in `username=`; printable, no quotes, no separators. */
const USER_RE = /^[A-Za-z0-9._~!*'()+-]{1,64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX32 = /^[0-9a-f]{32}$/;

interface FileShape {
  version: 1;
  realm: string;
  users: Record<string, DigestHa1>;
}

export class PhoneCredentials implements DigestCredentials {
  readonly realm: string;
  private readonly users: Map<string, DigestHa1>;

  constructor(realm: string, users: Map<string, DigestHa1>) {
    this.realm = realm;
    this.users = users;
  }

  ha1(user: string): DigestHa1 | undefined {
    return this.users.get(user);
  }

  get size(): number {
    return this.users.size;
  }

  names(): string[] {
    return [...this.users.keys()];
  }

  /** Phone credentials held in memory (tests, the in-memory overlay). */
  static inMemory(users: Record<string, string>, realm = 'secp2psip'): PhoneCredentials {
    return new PhoneCredentials(realm, new Map(Object.entries(users).map(([u, p]) => [u, digestHa1(u, realm, p)])));
  }
}

/** Read the phone users of a data directory (none yet: an empty store with a new realm, not written). */
export function loadPhoneCredentials(dataDir: string): PhoneCredentials {
  const path = join(dataDir, PHONE_USERS_FILE);
  if (!existsSync(path)) return new PhoneCredentials(newRealm(), new Map());
  let shape: FileShape;
  try {
    shape = JSON.parse(readFileSync(path, 'utf8')) as FileShape;
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `${path}: unreadable phone users file: ${(e as Error).message}`);
  }
  const users = new Map<string, DigestHa1>();
  const bad = (why: string) => new OverlayError('BAD_CONFIG', `${path}: damaged phone users file: ${why}`);
  if (shape?.version !== 1 || typeof shape.realm !== 'string' || typeof shape.users !== 'object' || !shape.users)
    throw bad('not version 1 with a realm and users');
  for (const [name, h] of Object.entries(shape.users)) {
    if (!USER_RE.test(name) || !HEX64.test(h?.['SHA-256'] ?? '') || !HEX32.test(h?.MD5 ?? ''))
      throw bad(`entry for '${name}'`);
    users.set(name, { 'SHA-256': h['SHA-256'], MD5: h.MD5 });
  }
  return new PhoneCredentials(shape.realm, users);
}

/** Add (or give a new password to) a phone user; returns the password (a generated one when none is given). */
export function addPhoneUser(dataDir: string, name: string, password?: string): string {
  if (!USER_RE.test(name))
    throw new OverlayError(
      'BAD_ARGUMENT',
      `--add-user: '${name}' is not a usable user name (1-64 letters, digits, . _ ~ ! * ' ( ) + -)`,
    );
  if (password !== undefined && (password.length < 8 || /[\r\n"\\]/.test(password)))
    throw new OverlayError(
      'BAD_ARGUMENT',
      '--password must be at least 8 characters, without quotes, backslashes or line breaks',
    );
  const pw = password ?? randomBytes(15).toString('base64url');
  const creds = loadPhoneCredentials(dataDir);
  const users = Object.fromEntries(creds.names().map((n) => [n, creds.ha1(n) as DigestHa1]));
  users[name] = digestHa1(name, creds.realm, pw);
  save(dataDir, { version: 1, realm: creds.realm, users });
  return pw;
}

/** Remove a phone user; false when there was none of that name. */
export function removePhoneUser(dataDir: string, name: string): boolean {
  const creds = loadPhoneCredentials(dataDir);
  if (!creds.ha1(name)) return false;
  const users = Object.fromEntries(
    creds
      .names()
      .filter((n) => n !== name)
      .map((n) => [n, creds.ha1(n) as DigestHa1]),
  );
  save(dataDir, { version: 1, realm: creds.realm, users });
  return true;
}

function newRealm(): string {
  return `secp2psip-${randomBytes(4).toString('hex')}`;
}

function save(dataDir: string, shape: FileShape): void {
  const path = join(dataDir, PHONE_USERS_FILE);
  const tmp = `${path}.tmp`;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, `${JSON.stringify(shape, null, 1)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `cannot write ${path}: ${(e as Error).message}`);
  }
}

/**
 * The phone users of a running daemon: the file is read at start (and created empty, so its realm is fixed
 * before any phone sees it) and read again when it changed, at most once a second, so `--add-user` and
 * `--remove-user` take effect without a restart. A file damaged later keeps the last good users.
 */
export function watchPhoneCredentials(
  dataDir: string,
  onError: (err: string) => void = () => {},
): { realm: string; ha1(user: string): DigestHa1 | undefined; size(): number } {
  const path = join(dataDir, PHONE_USERS_FILE);
  let creds = loadPhoneCredentials(dataDir);
  if (!existsSync(path)) save(dataDir, { version: 1, realm: creds.realm, users: {} });
  let mtime = statMtime(path);
  let checked = Date.now();
  const fresh = (): PhoneCredentials => {
    if (Date.now() - checked < 1000) return creds;
    checked = Date.now();
    const m = statMtime(path);
    if (m === mtime) return creds;
    mtime = m;
    try {
      const next = loadPhoneCredentials(dataDir);
      if (next.realm === creds.realm) creds = next;
      else onError(`${path}: realm changed; restart to use it`);
    } catch (e) {
      onError((e as Error).message);
    }
    return creds;
  };
  return { realm: creds.realm, ha1: (u) => fresh().ha1(u), size: () => fresh().size };
}

function statMtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * A daemon's phone authentication: open, or digest against the data directory's phone users. `warning` is
 * what the daemon logs once it is up (open registration, or no phone user yet), so a start-up failure stays
 * a one-line error.
 */
export function phoneAuthOf(
  o: {
    openRegistration?: boolean;
    phoneUsers?: PhoneCredentials;
    dataDir?: string;
    digestAlgorithms?: readonly DigestAlgorithm[];
  },
  clock: Clock,
  log: Logger,
): { auth: PhoneAuth; warning?: string } {
  if (o.openRegistration)
    return {
      auth: 'open',
      warning: 'open registration: any phone that reaches the SIP port may register any name and call as it',
    };
  const users = o.phoneUsers;
  const creds = users
    ? { realm: users.realm, ha1: (u: string) => users.ha1(u), size: () => users.size }
    : o.dataDir
      ? watchPhoneCredentials(o.dataDir, (err) => log.error({ err }, 'phone users file not reloaded'))
      : { realm: 'secp2psip', ha1: () => undefined, size: () => 0 };
  const digest = new DigestAuthenticator(
    { clock, credentials: creds, logger: log },
    {
      realm: creds.realm,
      algorithms: o.digestAlgorithms,
    },
  );
  return {
    auth: { digest, users: () => creds.size() },
    warning:
      creds.size() === 0
        ? 'no phone users configured: every REGISTER is refused (add one with --add-user NAME, or start with --open-registration)'
        : undefined,
  };
}
