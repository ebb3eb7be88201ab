/**
 * Several bootstrap servers for one overlay (seed 000 IV.2 suggests "multiple
 * bootstrap servers, each handling a subset of registration requests").
 *
 * They agree on who owns a name without talking: every name has exactly one
 * authoritative bootstrap, picked by rendezvous (highest-random-weight)
 * hashing of the name over the configured bootstrap set:
 *
 *   authority(name) = argmax over b of SHA-256("secp2psip/authority/v1" | name | b.key)
 *
 * Every bootstrap and adapter configured with the same set computes the same
 * answer. A bootstrap that receives a REGISTER for a name it does not own
 * forwards it to the authority, which alone checks uniqueness in its registry
 * and writes the name's pieces, so two bootstraps can never bind one name to
 * two keys. Adding a bootstrap moves only the names it now wins (about 1/m).
 */
import { createHash } from 'node:crypto';
import { bytesEqual } from '../util/bytes.ts';

export interface BootstrapRef {
  /** RPC address (host:port, or a unique in-memory name). */
  addr: string;
  /** Raw 32-byte Ed25519 node key of the bootstrap; also the admission-certificate signing key. */
  key: Uint8Array;
}

function weight(name: string, key: Uint8Array): Buffer {
  return createHash('sha256').update('secp2psip/authority/v1\0').update(name).update('\0').update(key).digest();
}

/** The one bootstrap responsible for `name`. Throws only if the set is empty (a configuration error). */
export function authorityFor(name: string, bootstraps: readonly BootstrapRef[]): BootstrapRef {
  if (bootstraps.length === 0) throw new Error('no bootstrap servers configured');
  let best = bootstraps[0];
  let bestW = weight(name, best.key);
  for (let i = 1; i < bootstraps.length; i++) {
    const w = weight(name, bootstraps[i].key);
    if (Buffer.compare(w, bestW) > 0) {
      best = bootstraps[i];
      bestW = w;
    }
  }
  return best;
}

export function isAuthority(name: string, self: Uint8Array, bootstraps: readonly BootstrapRef[]): boolean {
  return bytesEqual(authorityFor(name, bootstraps).key, self);
}
