/**
 * The registration and admission messages of SECP2PSIP (seed 000 IV.2, Table 1, and the answers the seed
 * names but does not lay out): an adapter's ADMIT and the bootstrap's ADMITTED, a user's REGISTER with its
 * proof of possession and the bootstrap's REGISTERED, and WHOIS. Their shapes and the bytes a REGISTER's
 * proof of possession signs live here; they travel, and are encoded and decoded, with every other message
 * in messages.ts, which re-exports this file.
 */
import { encode as cborEncode } from 'cborg';
import type { LocationRecord, UserKeyBundle } from './user-records.ts';

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

/** Ask a bootstrap what key it has bound to a name (TOFU re-registration check). */
export interface WhoisMsg {
  t: 'WHOIS';
  name: string;
}

export interface WhoisOkMsg {
  t: 'WHOIS_OK';
  bundle: UserKeyBundle;
}

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
