/**
 * What both sides of SecP2PSIP session establishment (caller.ts, callee.ts)
 * share: the security mode, the adapter's own users, the events the demo
 * shows, and sealing a message to a user's key (protected mode).
 */
import type { Identity } from '../identity/identity.ts';
import { open, recipientHint, seal } from '../identity/seal.ts';
import type { UserSigner } from '../identity/user-key.ts';
import { bytesEqual } from '../util/bytes.ts';
import type { Result } from '../util/errors.ts';
import { decodeMessage, encodeMessage, type SecP2PSipMessage, type UserKeyBundle } from './messages.ts';

export type SecurityMode = 'signed' | 'protected';

/** A user registered through this adapter: signs with `signer`, opens sealed messages with `kem`. */
export interface LocalUser {
  name: string;
  signer: UserSigner;
  kem: Identity;
  bundle: UserKeyBundle;
  /** The bootstrap-signed user certificate (user-cert.ts), for mailbox deposits and deletions. */
  cert?: Uint8Array;
}

/** The users registered through this adapter (the callee side answers for them). */
export interface LocalUsers {
  get(name: string): LocalUser | undefined;
  values(): Iterable<LocalUser>;
}

/** What the demo shows of a call: who verified whom, in which mode. */
export interface FlowEvent {
  kind: 'invite-verified' | 'redirect-verified';
  /** The user whose signature was checked. */
  verified: string;
  /** The local user on whose behalf it was checked. */
  by: string;
  mode: SecurityMode;
  /** Pieces that disagreed with the rebuilt key (robust rebuilding corrected them). */
  badPieces: number;
}

/** A SECP2PSIP message sealed to a user's key (protected mode), with the hint naming that key. */
export function sealFor(sealKey: Uint8Array, m: SecP2PSipMessage): Uint8Array {
  const box = seal(sealKey, encodeMessage(m));
  return encodeMessage({ t: 'SEALED', box, hint: recipientHint(sealKey, box) });
}

/** A SECP2PSIP request as received: decoded, and opened when it was sealed to `sealedTo`. */
export interface Opened {
  d: Result<SecP2PSipMessage>;
  sealedTo?: LocalUser;
}

/**
 * Decode a request, opening it when sealed. Only the user the recipient hint names is tried (an HMAC per user,
 * not an X25519 + AEAD open per user); a sealed request without a hint is refused (callee.ts explains the hint).
 */
export function openRequest(users: LocalUsers, payload: unknown): Opened {
  const d = decodeMessage(payload);
  if (!d.ok || d.value.t !== 'SEALED') return { d };
  const { box, hint } = d.value;
  for (const u of hint ? users.values() : []) {
    if (!bytesEqual(recipientHint(u.bundle.sealKey, box), hint as Uint8Array)) continue;
    const o = open(u.kem, box);
    if (o.ok) return { d: decodeMessage(o.value), sealedTo: u };
  }
  return {
    d: { ok: false, error: hint ? 'sealed to no user of this adapter' : 'sealed request without a recipient hint' },
  };
}
