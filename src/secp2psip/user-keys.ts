/**
 * Where an adapter keeps its users' keys (seed 000 IV.2 "Key-Pair
 * Generation"): on disk for a daemon, in memory for the in-memory overlay.
 * A key made for a name the bootstrap refused is discarded again, so a
 * stream of refused names leaves no files behind.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Identity } from '../identity/identity.ts';
import { writeSecretFileAtomic } from '../identity/key-file.ts';
import { INVITE_RE } from './messages.ts';

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
 * `<dir>/<name>.pem` (mode 0600, created on first use), in strict mode
 * `<dir>/<name>.crt`, and `<dir>/<name>.invite` (0600) for a token the user
 * was given (`secp2psip adapter --data DIR --invite-for NAME --token T`).
 */
export class FileUserKeys implements UserKeyStore {
  constructor(private readonly dir: string) {}

  identity(name: string): Identity {
    if (!existsSync(this.dir)) mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return Identity.loadOrCreate(join(this.dir, `${name}.pem`));
  }

  has(name: string): boolean {
    return existsSync(join(this.dir, `${name}.pem`));
  }

  discard(name: string): void {
    rmSync(join(this.dir, `${name}.pem`), { force: true });
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
