/**
 * SECP2PSIP wire messages: seed 000 section IV, Tables 1-3, plus the answers
 * the seed names but does not lay out (REGISTERED, and an ERROR reply).
 *
 * Every message travels as one deterministic CBOR byte string inside an RPC
 * request. `decodeMessage` takes bytes from the network and returns a Result;
 * it never throws. Field names follow the tables: Name, IP, PublicKey,
 * SignedHash, SIP Request.
 *
 * What is signed (the "to-be-signed" bytes, see `inviteTbs`/`redirectTbs`) is
 * built here too so sender and receiver cannot drift apart; the signing
 * itself is domain-separated by the identity layer.
 *
 * What the messages are built of lives beside them, one file a family, and
 * is re-exported here for the callers that import it all from one place:
 * the bounds, the user-name rule and the bounded field readers
 * (wire-fields.ts), the wire error codes (wire-errors.ts), the location
 * record and key bundle the ring keeps per user (user-records.ts), the
 * presence state a PRESENCE carries (presence-state.ts), and the shapes of
 * the registration and admission messages (registration-messages.ts).
 */
import { createHash } from 'node:crypto';
import { encode as cborEncode } from 'cborg';
import { HINT_LEN } from '../identity/seal.ts';
import { type ErrorCode, fail, ok, type Result } from '../util/errors.ts';
import type {
  AdmitMsg,
  AdmittedMsg,
  BootstrapInfo,
  RegisteredMsg,
  RegisterMsg,
  RingContact,
  WhoisMsg,
  WhoisOkMsg,
} from './registration-messages.ts';
import { plainLocation, readBundle, readLocation } from './user-records.ts';
import { errorDetail, wireErrorCode, wireErrorNumber } from './wire-errors.ts';
import {
  Bad,
  bytes,
  decodeCbor,
  INVITE_MAX,
  INVITE_RE,
  int,
  isObj,
  LIMITS,
  NAME_RE,
  type Obj,
  obj,
  optBytes,
  str,
  strip,
} from './wire-fields.ts';

export {
  decodePresenceState,
  encodePresenceState,
  PRESENCE_NOTE_MAX,
  type PresenceState,
} from './presence-state.ts';
export {
  decodeBundle,
  decodeLocation,
  encodeBundle,
  encodeLocation,
  type LocationRecord,
  locationTbs,
  type UserKeyBundle,
} from './user-records.ts';
export {
  GENERIC_REFUSAL,
  WIRE_ERROR,
  type WireErrorCode,
  wireErrorCode,
  wireErrorNumber,
} from './wire-errors.ts';
export { INVITE_MAX, INVITE_RE, isUsableUserName, LIMITS, NAME_RE } from './wire-fields.ts';
export {
  type AdmitMsg,
  type AdmittedMsg,
  type BootstrapInfo,
  type RegisteredMsg,
  type RegisterMsg,
  type RingContact,
  registerTbs,
  type WhoisMsg,
  type WhoisOkMsg,
} from './registration-messages.ts';

/**
 * The shape of every message signed like the seed's INVITE (Table 2): who (`name`) to whom (`to`), for which
 * call or exchange (`callId`), a fresh `nonce` and timestamp `ts`, the payload `sip`, and `sig` over `callTbs`.
 */
export interface SignedCallMsg<T extends SignedCallType> {
  t: T;
  name: string;
  to: string;
  callId: string;
  nonce: Uint8Array;
  ts: number;
  sip: Uint8Array;
  sig: Uint8Array;
}

export type SignedCallType = 'INVITE' | 'REDIRECT' | 'MESSAGE' | 'DELIVERED' | 'WATCH' | 'PRESENCE';

/** Seed Table 2. `sip` is the original SIP INVITE bytes; `sig` is the SignedHash. */
export type InviteMsg = SignedCallMsg<'INVITE'>;

/** Seed Table 3. `nonce` echoes the INVITE's so the REDIRECT cannot answer another call. */
export type RedirectMsg = SignedCallMsg<'REDIRECT'>;

/** Protected mode: any message above, HPKE-sealed to the receiver's X25519 key. Reveals nothing else. */
export interface SealedMsg {
  t: 'SEALED';
  /** HPKE output (RFC 9180 base mode): encapsulated key, then ciphertext and tag. */
  box: Uint8Array;
  /** Which key opens it: identity/seal.ts recipientHint (required on a sealed INVITE, see callee.ts). */
  hint?: Uint8Array;
}

/**
 * A refusal. Travels only over the pinned TLS link it answers, so it is not signed. On the wire `code` is its
 * number in WIRE_ERROR and `reason` the detail alone (the code's message is not repeated in it).
 */
export interface ErrorMsg {
  t: 'ERROR';
  code: ErrorCode;
  reason: string;
}

/**
 * An instant message (RFC 3428 MESSAGE) from one user to another, shaped like Table 2: `sip` is the phone's SIP
 * MESSAGE bytes, `sig` the sender's signature over `callTbs` (messaging.ts).
 */
export type ImMsg = SignedCallMsg<'MESSAGE'>;

/**
 * The recipient's adapter handed an ImMsg to `sip` = the count (decimal ASCII) of the recipient's phones that took
 * it; signed by the recipient, `nonce` echoes the MESSAGE's so it cannot answer another one.
 */
export type DeliveredMsg = SignedCallMsg<'DELIVERED'>;

/**
 * Presence (presence.ts). WATCH: user `name` asks the adapter of user `to` for `to`'s presence for `sip` =
 * the seconds (decimal ASCII) it wants it, signed by the watcher; `callId` names the subscription.
 * PRESENCE: `name`'s state for watcher `to` (`sip` = CBOR of PresenceState), signed by `name`.
 */
export type WatchMsg = SignedCallMsg<'WATCH'>;

export type PresenceMsg = SignedCallMsg<'PRESENCE'>;

export type SecP2PSipMessage =
  | ImMsg
  | DeliveredMsg
  | WatchMsg
  | PresenceMsg
  | RegisterMsg
  | RegisteredMsg
  | AdmitMsg
  | AdmittedMsg
  | InviteMsg
  | RedirectMsg
  | SealedMsg
  | ErrorMsg
  | WhoisMsg
  | WhoisOkMsg;

// ---------------------------------------------------------------- encoding

export function encodeMessage(m: SecP2PSipMessage): Uint8Array {
  switch (m.t) {
    case 'REGISTER':
      return cborEncode(strip({ ...m, location: plainLocation(m.location), publicKey: { ...m.publicKey } }));
    case 'REGISTERED':
    case 'ADMITTED':
      return cborEncode(
        strip({ ...m, ring: m.ring.map((r) => strip({ ...r })), bootstraps: m.bootstraps.map((b) => ({ ...b })) }),
      );
    case 'WHOIS_OK':
      return cborEncode({ t: m.t, bundle: { ...m.bundle } });
    case 'ERROR':
      return cborEncode({ t: m.t, code: wireErrorNumber(m.code), reason: errorDetail(m.code, m.reason) });
    default:
      return cborEncode(strip({ ...m }));
  }
}

// ---------------------------------------------------------------- decoding

function readRing(o: Obj): RingContact[] {
  if (!Array.isArray(o.ring) || o.ring.length > LIMITS.ring) throw new Bad('bad ring');
  return o.ring.map((r) => {
    if (!isObj(r)) throw new Bad('bad ring');
    return strip({
      id: str(r, 'id', 40, /^[0-9a-f]{40}$/),
      addr: str(r, 'addr', LIMITS.addr),
      key: bytes(r, 'key', 32),
      admission: optBytes(r, 'admission', LIMITS.cert),
    }) as unknown as RingContact;
  });
}

function readBootstraps(o: Obj): BootstrapInfo[] {
  if (!Array.isArray(o.bootstraps) || o.bootstraps.length === 0 || o.bootstraps.length > LIMITS.bootstraps)
    throw new Bad('bad bootstraps');
  return o.bootstraps.map((b) => {
    if (!isObj(b)) throw new Bad('bad bootstraps');
    return { addr: str(b, 'addr', LIMITS.addr), key: bytes(b, 'key', 32) };
  });
}

function readSigned<T extends SignedCallType>(t: T, o: Obj): SignedCallMsg<T> {
  return {
    t,
    name: str(o, 'name', LIMITS.name, NAME_RE),
    to: str(o, 'to', LIMITS.name, NAME_RE),
    callId: str(o, 'callId', 256),
    nonce: bytes(o, 'nonce', 16),
    ts: int(o, 'ts'),
    sip: bytes(o, 'sip', undefined, LIMITS.sip),
    sig: bytes(o, 'sig', undefined, LIMITS.sig),
  };
}

function readMessage(o: Obj): SecP2PSipMessage {
  switch (o.t) {
    case 'REGISTER': {
      const pk = obj(o, 'publicKey');
      const node = obj(o, 'node');
      let certChain: Uint8Array[] | undefined;
      if (o.certChain !== undefined) {
        if (!Array.isArray(o.certChain) || o.certChain.length === 0 || o.certChain.length > LIMITS.chain)
          throw new Bad('bad certChain');
        certChain = o.certChain.map((c) => {
          if (!(c instanceof Uint8Array) || c.length > LIMITS.cert) throw new Bad('bad certChain');
          return c;
        });
      }
      return strip({
        t: 'REGISTER',
        name: str(o, 'name', LIMITS.name, NAME_RE),
        ip: str(o, 'ip', LIMITS.addr),
        publicKey: { signKey: bytes(pk, 'signKey', undefined, LIMITS.spki), sealKey: bytes(pk, 'sealKey', 32) },
        certChain,
        node: { addr: str(node, 'addr', LIMITS.addr), key: bytes(node, 'key', 32) },
        location: readLocation(obj(o, 'location')),
        ts: int(o, 'ts'),
        nonce: bytes(o, 'nonce', 16),
        invite: o.invite === undefined ? undefined : str(o, 'invite', INVITE_MAX, INVITE_RE),
        sig: bytes(o, 'sig', undefined, LIMITS.sig),
      }) as unknown as RegisterMsg;
    }
    case 'REGISTERED':
      return strip({
        t: 'REGISTERED',
        name: str(o, 'name', LIMITS.name, NAME_RE),
        registeredAt: int(o, 'registeredAt'),
        nodeId: str(o, 'nodeId', 40, /^[0-9a-f]{40}$/),
        admission: bytes(o, 'admission', undefined, LIMITS.cert),
        ring: readRing(o),
        k: int(o, 'k', 1),
        n: int(o, 'n', 1),
        bootstraps: readBootstraps(o),
        userCert: optBytes(o, 'userCert', LIMITS.spki + 256),
      }) as unknown as RegisteredMsg;
    case 'ADMIT':
      return o.nodeKey === undefined ? { t: 'ADMIT' } : { t: 'ADMIT', nodeKey: bytes(o, 'nodeKey', 32) };
    case 'ADMITTED':
      return {
        t: 'ADMITTED',
        nodeId: str(o, 'nodeId', 40, /^[0-9a-f]{40}$/),
        admission: bytes(o, 'admission', undefined, LIMITS.cert),
        ring: readRing(o),
        bootstraps: readBootstraps(o),
        k: int(o, 'k', 1),
        n: int(o, 'n', 1),
      };
    case 'INVITE':
      return readSigned('INVITE', o);
    case 'REDIRECT':
      return readSigned('REDIRECT', o);
    case 'MESSAGE':
      return readSigned('MESSAGE', o);
    case 'DELIVERED':
      return readSigned('DELIVERED', o);
    case 'WATCH':
      return readSigned('WATCH', o);
    case 'PRESENCE':
      return readSigned('PRESENCE', o);
    case 'SEALED':
      return o.hint === undefined
        ? { t: 'SEALED', box: bytes(o, 'box', undefined, LIMITS.message) }
        : { t: 'SEALED', box: bytes(o, 'box', undefined, LIMITS.message), hint: bytes(o, 'hint', HINT_LEN) };
    case 'ERROR': {
      const code = wireErrorCode(int(o, 'code'));
      const reason = typeof o.reason === 'string' ? errorDetail(code, o.reason.slice(0, LIMITS.reason)) : '';
      return { t: 'ERROR', code, reason };
    }
    case 'WHOIS':
      return { t: 'WHOIS', name: str(o, 'name', LIMITS.name, NAME_RE) };
    case 'WHOIS_OK':
      return { t: 'WHOIS_OK', bundle: readBundle(obj(o, 'bundle')) };
    default:
      throw new Bad('unknown message type');
  }
}

/** Decode untrusted bytes into a message. Never throws. */
export function decodeMessage(buf: unknown): Result<SecP2PSipMessage> {
  const r = decodeCbor(buf);
  if (!r.ok) return r;
  try {
    return ok(readMessage(r.value));
  } catch (e) {
    if (e instanceof Bad) return fail(e.message);
    return fail('malformed message');
  }
}

// ---------------------------------------------------------------- what gets signed

export function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

/** Domain tags for the identity layer's domain-separated signatures. */
export const DOMAIN = {
  register: 'secp2psip/register/v1',
  location: 'secp2psip/location/v1',
  invite: 'secp2psip/invite/v1',
  redirect: 'secp2psip/redirect/v1',
  message: 'secp2psip/message/v1',
  delivered: 'secp2psip/delivered/v1',
  watch: 'secp2psip/watch/v1',
  presence: 'secp2psip/presence/v1',
} as const;

/**
 * Table 2/3 SignedHash, widened: kind, sender name, receiver name, Call-ID,
 * nonce, timestamp and SHA-256 of the SIP request bytes.
 */
export function callTbs(m: Omit<SignedCallMsg<SignedCallType>, 'sig'>): Uint8Array {
  return cborEncode([m.t, m.name, m.to, m.callId, m.nonce, m.ts, sha256(m.sip)]);
}
