/**
 * Key pieces of another key for a user, written as if by the bootstrap (a replayed older split, or a stolen
 * write key): every one passes the ring's validator, so only the rebuild can tell them from the true ones.
 */
import { Identity } from '../../src/identity/identity.ts';
import { UserSigner } from '../../src/identity/user-key.ts';
import { encodeBundle } from '../../src/secp2psip/messages.ts';
import { pieceKey, sealRingValue } from '../../src/secp2psip/ring-records.ts';
import { encodePiece, splitKey } from '../../src/sharing/index.ts';
import type { SecTestnet } from './testnet.ts';

/** The n sealed ring values of a fresh key's split for `name` (index i - 1 holds piece i), signed now + 1 ms. */
export async function forgedPieces(t: SecTestnet, name: string, n: number, k: number): Promise<Uint8Array[]> {
  const fake = Identity.generate();
  const bundle = {
    name,
    signKey: UserSigner.fromIdentity(fake).key.encode(),
    sealKey: fake.bundle.kem,
    registeredAt: 1,
  };
  const split = await splitKey(Uint8Array.from(encodeBundle(bundle)), n, k);
  const at = t.clock.wallNow() + 1;
  return split.map((p, j) => sealRingValue(t.bootstraps[0].identity, pieceKey(name, j + 1), encodePiece(p), at));
}
