/**
 * Where an adapter keeps its users' keys (seed 000 IV.2 "Key-Pair
 * Generation"): on disk for a daemon, in memory for the in-memory overlay.
 * A key made for a name the bootstrap refused is discarded again, so a
 * stream of refused names leaves no files behind.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Identity } from '../identity/identity.ts';
import { assertPrivateFile, syncFileAndDir, writeSecretFileAtomic } from '../identity/key-file.ts';
import { OverlayError } from '../util/errors.ts';
import { INVITE_RE } from './messages.ts';

/** Domain of the HMAC that derives a user's key seeds (see FileUserKeys). */
const KEY_DOMAIN = 'secp2psip/user-key/v1\0';

export interface UserKeyStore {
  /** The key to register the user with (a store that keeps keys creates it on first use). */
  identity(name: string): Identity;
  /** Whether a key is kept for the user already (a name registered before). */
  has(name: string): boolean;
  /** Drop the user's key: it was made for a name the bootstrap refused. */
  discard(name: string): void;
  /** Strict mode: the user's certificate chain (DER, leaf first); undefined when there is none (relaxed mode). */
  certChain(name: string): Uint8Array[] | undefined;
  /** The enrolment token configured for the user's first registration, if any. */
  invite(name: string): string | undefined;
  /** The token was spent (the name is bound): forget it. */
  inviteSpent(name: string): void;
}

/** Nothing kept: a new key on every registration, no certificates. */
export class MemoryUserKeys implements UserKeyStore {
  identity(): Identity {
    return Identity.generate();
  }

  has(): boolean {
    return false;
  }

  discard(): void {}

  certChain(): undefined {
    return undefined;
  }

  invite(): undefined {
    return undefined;
  }

  inviteSpent(): void {}
}

/**
 * `<dir>/<name>.pem` (mode 0600), in strict mode `<dir>/<name>.crt`, and
 * `<dir>/<name>.invite` (0600) for a token the user was given
 * (`secp2psip adapter --data DIR --invite-for NAME --token T`).
 *
 * A new user's key is derived, not drawn: its two seeds are HMAC-SHA-256
 * (RFC 2104) of the name under `<dir>/.key-secret`, 32 random bytes made
 * once per directory (0600, fsynced when the store opens, before any key is
 * derived from it). The key file used to be fsynced (file and directory)
 * before the REGISTER left, so that a crash could not leave the bootstrap
 * binding the name to a key the adapter no longer had. A derived key cannot
 * be lost: the file is written at once but made durable beside the
 * registration, off the event loop, and after a crash that cut it short the
 * same key is derived again (a file holding a beginning of the derived
 * key's PEM, possibly nothing, is such a torn copy; anything else unreadable
 * is still an error). The seeds are as secret as the key files (same
 * directory, same mode) and, HMAC being a PRF, as unpredictable as drawn
 * keys; a readable `.pem` on disk (keys made before, or put there) is
 * always the one used.
 */
export class FileUserKeys implements UserKeyStore {
  /** The directory's key-derivation secret, read (or made) when the store opens, not on a registration. */
  private readonly secret: Buffer;
  /** Key files being made durable (see identity). */
  private readonly syncing = new Set<Promise<void>>();

  constructor(private readonly dir: string) {
    const file = join(dir, '.key-secret');
    if (!existsSync(file)) writeSecretFileAtomic(file, randomBytes(32), { exclusive: true });
    assertPrivateFile(file);
    this.secret = readFileSync(file);
    if (this.secret.length !== 32) throw new OverlayError('IDENTITY_BAD_KEY', `${file} must hold 32 bytes`);
  }

  identity(name: string): Identity {
    const file = join(this.dir, `${name}.pem`);
    if (existsSync(file)) return this.load(name, file);
    const id = this.derive(name);
    // Another process that made the file at the same moment derived the same key.
    if (writeSecretFileAtomic(file, id.toPem(), { exclusive: true, durable: false })) this.makeDurable(file);
    return id;
  }

  has(name: string): boolean {
    return existsSync(join(this.dir, `${name}.pem`));
  }

  discard(name: string): void {
    rmSync(join(this.dir, `${name}.pem`), { force: true });
  }

  /** The key files written so far are on disk. */
  async flush(): Promise<void> {
    await Promise.all(this.syncing);
  }

  /** A key file; a torn copy of the derived key (a crash before it was durable) is the derived key again. */
  private load(name: string, file: string): Identity {
    try {
      return Identity.load(file);
    } catch (e) {
      const id = this.derive(name);
      const pem = id.toPem();
      const held = readFileSync(file, 'utf8');
      if (!pem.startsWith(held)) throw e;
      writeSecretFileAtomic(file, pem);
      return id;
    }
  }

  private makeDurable(file: string): void {
    // Not durable: the key is derived again after a crash (see the class comment); a file removed
    // meanwhile (discard) has nothing left to sync.
    const p = syncFileAndDir(file)
      .catch(() => {})
      .finally(() => this.syncing.delete(p));
    this.syncing.add(p);
  }

  /** The user's key from the directory's secret: see the class comment. */
  private derive(name: string): Identity {
    const seed = (what: string) => createHmac('sha256', this.secret).update(`${KEY_DOMAIN}${what}\0${name}`).digest();
    return Identity.fromSeeds(seed('sign'), seed('seal'));
  }

  /** The PEM chain in `<name>.crt`, issued for the key in `<name>.pem`. */
  certChain(name: string): Uint8Array[] | undefined {
    const path = join(this.dir, `${name}.crt`);
    if (!existsSync(path)) return undefined;
    const pems =
      readFileSync(path, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    const ders = pems.map(
      (p) => new Uint8Array(Buffer.from(p.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64')),
    );
    return ders.length > 0 ? ders : undefined;
  }

  invite(name: string): string | undefined {
    const path = join(this.dir, `${name}.invite`);
    if (!existsSync(path)) return undefined;
    const token = readFileSync(path, 'utf8').trim();
    return INVITE_RE.test(token) ? token : undefined;
  }

  /** Keep `token` for the user's first registration. */
  saveInvite(name: string, token: string): void {
    writeSecretFileAtomic(join(this.dir, `${name}.invite`), `${token}\n`);
  }

  inviteSpent(name: string): void {
    rmSync(join(this.dir, `${name}.invite`), { force: true });
  }
}
