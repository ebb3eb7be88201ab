/**
 * The witness of a bootstrap's own registry file (registry.ts): a small file
 * beside it holding how many users the registry had, read before a bootstrap
 * starts (data-dir.ts). The shared registry's is registry-pg-witness.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeSecretFileAtomic } from '../identity/key-file.ts';

/**
 * The registry's witness, a small file next to it: how many users the
 * registry held when last written (at start, at the first registration, on
 * release, at close). A registry that is empty or gone while its witness says
 * it had users was damaged or deleted: a bootstrap that started anyway would
 * hand every name to whoever asks first.
 */
export function readRegistryWitness(path: string): { users: number } | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as { users?: unknown };
    return { users: typeof v.users === 'number' && v.users >= 0 ? v.users : 1 };
  } catch {
    // A witness that cannot be read still says there was a registry: assume it had users.
    return { users: 1 };
  }
}

export function writeRegistryWitness(path: string, users: number): void {
  writeSecretFileAtomic(path, `${JSON.stringify({ users, writtenAt: new Date().toISOString() })}\n`);
}
