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
 */
import { createHash } from 'node:crypto';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { HINT_LEN } from '../identity/seal.ts';
import { type ErrorCode, ERRORS, fail, ok, type Result } from '../util/errors.ts';

/** Upper bounds for what we accept from the network. */
export const LIMITS = {
  name: 64,
  addr: 300,
  sip: 16 * 1024,
  cert: 8 * 1024,
  chain: 4,
  ring: 32,
  reason: 200,
  message: 64 * 1024,
  /** SubjectPublicKeyInfo DER of a user key: Ed25519 is 44 bytes, RSA-8192 about 1.1 KB. */
  spki: 1200,
  /** Signatures: Ed25519 and P-256 are 64 bytes, RSA up to 512 (4096 bits) or 1024 (8192 bits). */
  sig: 1024,
  bootstraps: 16,
} as const;

/**
 * A user name that is safe as a ring key (`Username` -> location, `Username.i` -> piece i) and as the name of
 * the user's key files. The name is the SIP URI's user part after unescaping (the URI parser does that, so
 * `john%2Edoe` is `john.doe`, as RFC 3261 19.1.4 compares them). Accepted: 1 to 64 of the RFC 3261 `unreserved`
 * characters (letters, digits, `- _ . ! ~ * ' ( )`) and `+` (common in phone-number-like names), except:
 * - no leading `.`: `.`, `..` and hidden names would be path tricks where the name is a file name;
 * - no trailing `.<digits>`: `Username.i` then never equals another user's `Username`, and a piece key parses
 *   back into one name and one index (strip the last `.<digits>`).
 * The other user-part characters (`& = $ , ; ? /`, escaped controls, spaces, non-ASCII) are refused: they are
 * delimiters in URIs, paths or SQL-like logs, and no phone needs them in a name.
 */
export const NAME_RE = /^(?!\.)(?!.*\.[0-9]+$)[A-Za-z0-9_.!~*'()+-]{1,64}$/;

/** An enrolment token as `secp2psip bootstrap --invite` prints it (base64url), and its longest accepted form. */
export const INVITE_RE = /^[A-Za-z0-9_-]{16,128}$/;
export const INVITE_MAX = 128;

/** Whether `name` (an unescaped SIP user part) can be a SecP2PSIP user: see NAME_RE. */
export function isUsableUserName(name: string): boolean {
  return NAME_RE.test(name);
}

/** The user's public key bundle: what the bootstrap splits into pieces (seed IV.2 "Public Key Distribution"). */
export interface UserKeyBundle {
  name: string;
  /**
   * The user's signing key as SubjectPublicKeyInfo DER: Ed25519 in relaxed mode; in strict mode the key
   * of the user's certificate (RSA >= 2048 or ECDSA P-256). Verifies SignedHash.
   */
  signKey: Uint8Array;
  /** Raw 32-byte X25519 public key: protected mode seals to it. */
  sealKey: Uint8Array;
  /** When the bootstrap bound this key to the name (ms since epoch); lets a TOFU store tell a re-registration. */
  registeredAt: number;
}

/** `Username` -> where the user's adapter is, signed by the user (not by the bootstrap). */
export interface LocationRecord {
  name: string;
  /** The adapter's node key and RPC address: SECP2PSIP INVITE goes there over pinned TLS. */
  nodeKey: Uint8Array;
  nodeAddr: string;
  /** The adapter's SIP host:port (seed Table 1 "IP"). */
  sipAddr: string;
  time: number;
  seq: number;
  /** Signature by the user's signKey over `locationTbs`. */
  sig: Uint8Array;
  /** Admission certificate binding the adapter's ring id to nodeKey (signed by a bootstrap; self-verifying). */
  admission?: Uint8Array;
}

/** Seed Table 1, plus proof of possession and the adapter's node key. */
export interface RegisterMsg {
  t: 'REGISTER';
  name: string;
  /** Adapter SIP host:port. */
  ip: string;
  publicKey: { signKey: Uint8Array; sealKey: Uint8Array };
  /** Strict mode: DER certificates, leaf first, chaining to the bootstrap's CA bundle; the leaf key is signKey. */
  certChain?: Uint8Array[];
  node: { addr: string; key: Uint8Array };
  location: LocationRecord;
  ts: number;
  nonce: Uint8Array;
  /**
   * Enrolment token (RELOAD's enrolment server idea): a one-time token from
   * `secp2psip bootstrap --invite`, needed for a new name when the bootstrap
   * runs with --require-invite. Part of `registerTbs`, so it cannot be swapped.
   */
  invite?: string;
  /** Proof of possession: user signKey over `registerTbs`. */
  sig: Uint8Array;
}

export interface RingContact {
  id: string;
  addr: string;
  key: Uint8Array;
  admission?: Uint8Array;
}

export interface RegisteredMsg {
  t: 'REGISTERED';
  name: string;
  registeredAt: number;
  /** The adapter's ring id, chosen by the bootstrap, and the certificate that binds it to the node key. */
  nodeId: string;
  admission: Uint8Array;
  /** Ring contact info (seed IV.2 "Registration Success Response"). */
  ring: RingContact[];
  k: number;
  n: number;
  /** Every bootstrap of the overlay: their keys sign admissions and ring writes. */
  bootstraps: BootstrapInfo[];
  /** The user certificate (user-cert.ts): lets ring members check the user's mailbox deposits. */
  userCert?: Uint8Array;
}

export interface BootstrapInfo {
  addr: string;
  key: Uint8Array;
}

/** An adapter asks for its ring id; the node key is the one it proved in the TLS handshake. */
export interface AdmitMsg {
  t: 'ADMIT';
  /** Set only by a bootstrap forwarding an adapter's ADMIT to the key's ring-id authority (bootstrap-server.ts). */
  nodeKey?: Uint8Array;
}

export interface AdmittedMsg {
  t: 'ADMITTED';
  nodeId: string;
  admission: Uint8Array;
  ring: RingContact[];
  bootstraps: BootstrapInfo[];
  k: number;
  n: number;
}

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
 * SECP2PSIP error codes on the wire: an explicit table whose numbers are never reused or renumbered (append
 * only). A code missing here is sent as 0, and a number a peer sends that is not here (a newer peer's) decodes
 * to 0: a generic refusal.
 */
export const WIRE_ERROR = Object.freeze({
  RPC_REFUSED: 0,
  RPC_MALFORMED: 1,
  RPC_TIMEOUT: 2,
  RPC_UNREACHABLE: 3,
  RPC_PEER_KEY_MISMATCH: 4,
  RPC_TOO_MANY_IN_FLIGHT: 5,
  USER_UNKNOWN: 6,
  USER_NAME_TAKEN: 7,
  CALLEE_UNREACHABLE: 8,
  VERIFICATION_FAILED: 9,
  TIMEOUT: 10,
  IDENTITY_BAD_KEY: 11,
  IDENTITY_BAD_SIGNATURE: 12,
  IDENTITY_BAD_CERTIFICATE: 13,
  IDENTITY_STALE: 14,
  IDENTITY_REPLAY: 15,
  SHARING_NOT_ENOUGH_PIECES: 16,
  SHARING_PIECES_DISAGREE: 17,
  DHT_NOT_FOUND: 18,
  DHT_LOOKUP_FAILED: 19,
  DHT_RECORD_INVALID: 20,
  DHT_RECORD_TOO_LARGE: 21,
  DHT_STORE_FULL: 22,
  DHT_ACCESS_DENIED: 23,
  DHT_BAD_TOKEN: 24,
  DHT_NOT_READY: 25,
  DHT_BAD_REQUEST: 26,
  BAD_ARGUMENT: 27,
  BAD_CONFIG: 28,
  NOT_READY: 29,
  DATA_UNUSABLE: 30,
  USER_NAME_RATE: 31,
  USER_NAME_QUOTA: 32,
  USER_INVITE_INVALID: 33,
  REGISTRY_UNAVAILABLE: 34,
} satisfies Partial<Record<ErrorCode, number>>);

export type WireErrorCode = keyof typeof WIRE_ERROR;

/** The code every unknown wire number decodes to. */
export const GENERIC_REFUSAL: WireErrorCode = 'RPC_REFUSED';

const WIRE_ERROR_CODE = new Map<number, WireErrorCode>(
  Object.entries(WIRE_ERROR).map(([code, n]) => [n, code as WireErrorCode]),
);

/** The wire number of a code (0, the generic refusal, for a code that does not travel). */
export function wireErrorNumber(code: ErrorCode): number {
  return (WIRE_ERROR as Partial<Record<ErrorCode, number>>)[code] ?? WIRE_ERROR[GENERIC_REFUSAL];
}

/** The code of a wire number: unknown numbers are a generic refusal. */
export function wireErrorCode(n: number): WireErrorCode {
  return WIRE_ERROR_CODE.get(n) ?? GENERIC_REFUSAL;
}

/** The detail of a refusal without its code's message in front (senders pass `error.message`, which has it). */
function errorDetail(code: ErrorCode, reason: string): string {
  const prefix = ERRORS[code];
  if (reason === prefix) return '';
  return reason.startsWith(`${prefix}: `) ? reason.slice(prefix.length + 2) : reason;
}

/** Ask a bootstrap what key it has bound to a name (TOFU re-registration check). */
export interface WhoisMsg {
  t: 'WHOIS';
  name: string;
}

export interface WhoisOkMsg {
  t: 'WHOIS_OK';
  bundle: UserKeyBundle;
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

function strip<T extends object>(o: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

function plainLocation(r: LocationRecord): Record<string, unknown> {
  return strip({ ...r });
}

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

export function encodeLocation(r: LocationRecord): Uint8Array {
  return cborEncode(plainLocation(r));
}

/** Canonical bytes of a key bundle: the secret the bootstrap splits into pieces. */
export function encodeBundle(b: UserKeyBundle): Uint8Array {
  return cborEncode({ name: b.name, signKey: b.signKey, sealKey: b.sealKey, registeredAt: b.registeredAt });
}

// ---------------------------------------------------------------- decoding

type Obj = Record<string, unknown>;

class Bad extends Error {}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function str(o: Obj, k: string, max: number, re?: RegExp): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max || (re && !re.test(v))) throw new Bad(`bad ${k}`);
  return v;
}

function bytes(o: Obj, k: string, len?: number, max = LIMITS.sip): Uint8Array {
  const v = o[k];
  if (!(v instanceof Uint8Array) || (len !== undefined && v.length !== len) || v.length > max)
    throw new Bad(`bad ${k}`);
  return v;
}

function int(o: Obj, k: string, min = 0): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new Bad(`bad ${k}`);
  return v;
}

function obj(o: Obj, k: string): Obj {
  const v = o[k];
  if (!isObj(v)) throw new Bad(`bad ${k}`);
  return v;
}

function optBytes(o: Obj, k: string, max: number): Uint8Array | undefined {
  return o[k] === undefined ? undefined : bytes(o, k, undefined, max);
}

function readLocation(o: Obj): LocationRecord {
  return strip({
    name: str(o, 'name', LIMITS.name, NAME_RE),
    nodeKey: bytes(o, 'nodeKey', 32),
    nodeAddr: str(o, 'nodeAddr', LIMITS.addr),
    sipAddr: str(o, 'sipAddr', LIMITS.addr),
    time: int(o, 'time'),
    seq: int(o, 'seq'),
    sig: bytes(o, 'sig', undefined, LIMITS.sig),
    admission: optBytes(o, 'admission', LIMITS.cert),
  }) as unknown as LocationRecord;
}

function readBundle(o: Obj): UserKeyBundle {
  return {
    name: str(o, 'name', LIMITS.name, NAME_RE),
    signKey: bytes(o, 'signKey', undefined, LIMITS.spki),
    sealKey: bytes(o, 'sealKey', 32),
    registeredAt: int(o, 'registeredAt'),
  };
}

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

function decodeCbor(buf: unknown): Result<Obj> {
  if (!(buf instanceof Uint8Array)) return fail('not a byte string');
  if (buf.length > LIMITS.message) return fail('message too large');
  let v: unknown;
  try {
    v = cborDecode(buf, { strict: true, rejectDuplicateMapKeys: true, allowUndefined: false });
  } catch (e) {
    return fail(`bad CBOR: ${(e as Error).message}`);
  }
  if (!isObj(v)) return fail('not a map');
  return ok(v);
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

export function decodeLocation(buf: unknown): Result<LocationRecord> {
  const r = decodeCbor(buf);
  if (!r.ok) return r;
  try {
    return ok(readLocation(r.value));
  } catch (e) {
    return fail(e instanceof Bad ? e.message : 'malformed location record');
  }
}

export function decodeBundle(buf: unknown): Result<UserKeyBundle> {
  const r = decodeCbor(buf);
  if (!r.ok) return r;
  try {
    return ok(readBundle(r.value));
  } catch (e) {
    return fail(e instanceof Bad ? e.message : 'malformed key bundle');
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

/** Proof of possession for Table 1: binds name, adapter, both user keys, node key, time and nonce. */
export function registerTbs(m: Omit<RegisterMsg, 'sig' | 'location' | 't'>): Uint8Array {
  const fields: unknown[] = [
    'REGISTER',
    m.name,
    m.ip,
    m.publicKey.signKey,
    m.publicKey.sealKey,
    m.node.addr,
    m.node.key,
    m.ts,
    m.nonce,
  ];
  // Appended only when present: a REGISTER without a token signs the same bytes as before the field existed.
  if (m.invite !== undefined) fields.push(m.invite);
  return cborEncode(fields);
}

export function locationTbs(r: Omit<LocationRecord, 'sig' | 'admission'>): Uint8Array {
  return cborEncode(['LOCATION', r.name, r.nodeKey, r.nodeAddr, r.sipAddr, r.time, r.seq]);
}

/**
 * Table 2/3 SignedHash, widened: kind, sender name, receiver name, Call-ID,
 * nonce, timestamp and SHA-256 of the SIP request bytes.
 */
export function callTbs(m: Omit<SignedCallMsg<SignedCallType>, 'sig'>): Uint8Array {
  return cborEncode([m.t, m.name, m.to, m.callId, m.nonce, m.ts, sha256(m.sip)]);
}

/** A user's presence as its adapter publishes it (RFC 3863 basic status and note), ordered by `seq`. */
export interface PresenceState {
  open: boolean;
  note?: string;
  /** Grows with every change the presentity's adapter makes (a newer state wins). */
  seq: number;
}

/** Longest presence note carried (characters). */
export const PRESENCE_NOTE_MAX = 256;

export function encodePresenceState(s: PresenceState): Uint8Array {
  return cborEncode(strip({ open: s.open, note: s.note, seq: s.seq }));
}

export function decodePresenceState(buf: unknown): Result<PresenceState> {
  const r = decodeCbor(buf);
  if (!r.ok) return r;
  const o = r.value;
  if (typeof o.open !== 'boolean') return fail('bad open');
  if (o.note !== undefined && (typeof o.note !== 'string' || o.note.length > PRESENCE_NOTE_MAX))
    return fail('bad note');
  try {
    return ok(strip({ open: o.open, note: o.note, seq: int(o, 'seq') }) as unknown as PresenceState);
  } catch {
    return fail('bad seq');
  }
}
