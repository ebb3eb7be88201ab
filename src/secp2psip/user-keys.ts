/**
 * Where an adapter keeps its users' keys (seed 000 IV.2 "Key-Pair
 * Generation"): on disk for a daemon, in memory for the in-memory overlay.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Identity } from '../identity/identity.ts';

export interface UserKeyStore {
  /** The key to register the user with (a store that keeps keys creates it on first use). */
  identity(name: string): Identity;
  /** Strict mode: the user's certificate chain (DER, leaf first); undefined when there is none (relaxed mode). */
  certChain(name: string): Uint8Array[] | undefined;
}

/** Nothing kept: a new key on every registration, no certificates. */
export class MemoryUserKeys implements UserKeyStore {
  identity(): Identity {
    return Identity.generate();
  }

  certChain(): undefined {
    return undefined;
  }
}

/** `<dir>/<name>.pem` (mode 0600, created on first use) and, in strict mode, `<dir>/<name>.crt`. */
export class FileUserKeys implements UserKeyStore {
  constructor(private readonly dir: string) {}

  identity(name: string): Identity {
    if (!existsSync(this.dir)) mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return Identity.loadOrCreate(join(this.dir, `${name}.pem`));
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
}
