/**
 * ADMIT at a SecP2PSIP bootstrap (seed 000 IV.2, Figure 2): the bootstrap,
 * not the node, picks each node's ring id and certifies it in an admission.
 * One ring id per node key across the bootstrap set: a keyed hash of the key
 * (ringIdFor), minted by the key's one ring-id authority (rendezvous hashing
 * as for names, name-authority.ts); another bootstrap forwards the ADMIT
 * there. Rate-limited per node key and per source address, on the injected
 * clock. The bootstrap's request dispatch is bootstrap-server.ts.
 */
import { createHash, createHmac, sign as cryptoSign } from 'node:crypto';
import type { ChordNode } from '../dht/chord/chord-node.ts';
import { issueAdmission } from '../identity/admission.ts';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import type { Identity } from '../identity/identity.ts';
import { rawPublicToKeyObject } from '../identity/keys.ts';
import type { Caller, NodeRef, RpcEndpoint } from '../rpc/types.ts';
import type { Clock } from '../util/clock.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { type TokenBucketLimit, TokenBuckets } from '../util/token-bucket.ts';
import { bytesEqual } from '../util/bytes.ts';
import { type AdmitMsg, type AdmittedMsg, type BootstrapInfo, encodeMessage, type RingContact } from './messages.ts';
import { authorityFor } from './name-authority.ts';
import type { Registry } from './registry.ts';

/** The one RPC method carrying SECP2PSIP messages (Chord uses `chord.*`). */
export const SECP2PSIP_METHOD = 'secp2psip';

/** Defaults: a node key is admitted a few times in a row, then once a minute; one address 64 at once, then 1/s. */
export const DEFAULT_ADMIT_LIMITS = Object.freeze({
  perKey: Object.freeze({ burst: 3, perSecond: 1 / 60 }),
  perAddress: Object.freeze({ burst: 64, perSecond: 1 }),
});

const RING_ID_DOMAIN = 'secp2psip/ring-id/v1\0';

/** How long a forwarded ADMIT waits for the ring-id authority (well inside an adapter's own RPC timeout). */
const ADMIT_FORWARD_TIMEOUT_MS = 1000;
/** How long a ring-id authority that did not answer is not asked again. */
const AUTHORITY_DOWN_MS = 30_000;

/** The string whose rendezvous authority (name-authority.ts) mints a node key's ring id. */
function ringIdAuthorityName(nodeKey: Uint8Array): string {
  return `ring-id:${Buffer.from(nodeKey).toString('hex')}`;
}

/** The host part of a transport address (`host:port`, `[v6]:port`, or an in-memory name). */
export function sourceHost(addr: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(addr) ?? /^([^:]+):\d+$/.exec(addr);
  return m ? m[1] : addr;
}

/** Up to 8 ring members to join through: the bootstrap's own node and its successors. */
export function ringContacts(ring: ChordNode): RingContact[] {
  const refs = [ring.self, ...ring.successors.filter((r) => r.id !== ring.id)];
  return refs.slice(0, 8).map((r) => ({ id: r.id, addr: r.addr, key: r.key, admission: r.admission }));
}

/** What admitting needs of its bootstrap (BootstrapServer passes its own). */
export interface AdmissionsComponents {
  identity: Identity;
  endpoint: RpcEndpoint;
  ring: ChordNode;
  registry: Registry;
  clock: Clock;
  log: Logger;
  bootstraps: BootstrapInfo[];
  k: number;
  n: number;
  /** The bootstrap's counters (BootstrapServer.stats): these are counted here. */
  stats: { admitted: number; admitLimited: number; admitForwarded: number };
  isPeerBootstrap(key: Uint8Array): boolean;
}

export interface AdmissionsInit {
  /** Lifetime of admission certificates (default 30 days). */
  admissionTtlMs?: number;
  /** Key of the ring-id derivation (BootstrapInit.ringIdSecret). */
  ringIdSecret?: Uint8Array;
  /** ADMIT rate limits per node key and per source address (token buckets on the injected clock). */
  admitLimits?: { perKey?: TokenBucketLimit; perAddress?: TokenBucketLimit };
}

export class Admissions {
  private readonly c: AdmissionsComponents;
  /** Ring-id authorities (hex key) found silent, and until when they are not asked. */
  private readonly authorityDownUntil = new Map<string, number>();
  private readonly admissionTtlMs: number;
  private readonly ringIdSecret: Uint8Array;
  private readonly admitPerKey: TokenBuckets;
  private readonly admitPerAddress: TokenBuckets;

  constructor(c: AdmissionsComponents, init: AdmissionsInit) {
    this.c = c;
    this.admissionTtlMs = init.admissionTtlMs ?? 30 * 24 * 3600_000;
    // Ed25519 signatures are deterministic: a secret only this bootstrap can compute, the same after a restart.
    this.ringIdSecret =
      init.ringIdSecret ??
      createHash('sha256')
        .update(cryptoSign(null, Buffer.from(`${RING_ID_DOMAIN}secret`), c.identity.signingKey))
        .digest();
    this.admitPerKey = new TokenBuckets(c.clock, init.admitLimits?.perKey ?? DEFAULT_ADMIT_LIMITS.perKey);
    this.admitPerAddress = new TokenBuckets(c.clock, init.admitLimits?.perAddress ?? DEFAULT_ADMIT_LIMITS.perAddress);
  }

  /**
   * The ring id of a node key: HMAC-SHA-256(secret, domain | key), first 160
   * bits. One id per key, so re-admission cannot move a node; and unknown
   * before admission, so grinding keys offline cannot pick a place in the
   * ring (online, ADMIT is rate-limited per key and per address).
   */
  ringIdFor(nodeKey: Uint8Array): string {
    return createHmac('sha256', this.ringIdSecret)
      .update(RING_ID_DOMAIN)
      .update(nodeKey)
      .digest()
      .subarray(0, 20)
      .toString('hex');
  }

  /**
   * ADMIT, as received. One ring id per node key across the bootstrap set:
   * every key has one ring-id authority among the bootstraps (rendezvous
   * hashing as for names, name-authority.ts), which alone mints its id (see
   * ringIdFor, with its own secret); another bootstrap checks its rate limits
   * and forwards the ADMIT there. Only while the authority does not answer
   * does the receiving bootstrap admit the key itself (at most one more id
   * per bootstrap, never one per call).
   */
  async request(m: AdmitMsg, caller: Caller): Promise<Uint8Array> {
    if (m.nodeKey !== undefined) {
      if (!this.c.isPeerBootstrap(caller.key))
        throw new OverlayError('RPC_REFUSED', 'ADMIT for another node key comes only from a peer bootstrap');
      return encodeMessage(this.admit(m.nodeKey)); // the forwarding bootstrap limited the source address
    }
    const nodeKey = caller.key;
    if (!rawPublicToKeyObject('ed25519', nodeKey)) throw new OverlayError('IDENTITY_BAD_KEY', 'node key');
    // A peer bootstrap asks for the ring's contacts (while founding, every FOUNDING_POLL_MS): not limited.
    if (this.c.isPeerBootstrap(nodeKey)) return encodeMessage(this.mint(nodeKey));
    const authority = authorityFor(ringIdAuthorityName(nodeKey), this.c.bootstraps);
    if (bytesEqual(authority.key, this.c.identity.bundle.sig)) return encodeMessage(this.admit(nodeKey, caller.addr));
    this.limitAdmit(nodeKey, caller.addr);
    const to: NodeRef = { id: nodeIdFromKey(authority.key), addr: authority.addr, key: authority.key };
    const authorityKey = Buffer.from(authority.key).toString('hex');
    // An authority found silent lately is not asked again for a while: the adapter's own ADMIT would time
    // out behind every forward (and its retries hit the per-key limit), so it could never be admitted.
    if ((this.authorityDownUntil.get(authorityKey) ?? 0) <= this.c.clock.now()) {
      try {
        const answer = await this.c.endpoint.request(to, SECP2PSIP_METHOD, encodeMessage({ t: 'ADMIT', nodeKey }), {
          timeoutMs: ADMIT_FORWARD_TIMEOUT_MS,
        });
        if (answer instanceof Uint8Array) {
          this.c.stats.admitForwarded++;
          return answer;
        }
      } catch (e) {
        if (!isOverlayError(e) || !/RPC_(UNREACHABLE|TIMEOUT|TOO_MANY_IN_FLIGHT)/.test(e.code)) throw e;
        this.authorityDownUntil.set(authorityKey, this.c.clock.now() + AUTHORITY_DOWN_MS);
        this.c.log.warn({ authority: authority.addr, err: e.message }, 'ring-id authority unreachable; admitting here');
      }
    }
    return encodeMessage(this.mint(nodeKey));
  }

  /**
   * ADMIT here: give `nodeKey` its ring id (always the same one for a key, see ringIdFor; an id stored
   * earlier for the key is kept) and an admission certificate. Rate-limited per key and, when `from`
   * is given, per source address.
   */
  admit(nodeKey: Uint8Array, from?: string): AdmittedMsg {
    if (!rawPublicToKeyObject('ed25519', nodeKey)) throw new OverlayError('IDENTITY_BAD_KEY', 'node key');
    this.limitAdmit(nodeKey, from);
    return this.mint(nodeKey);
  }

  private limitAdmit(nodeKey: Uint8Array, from: string | undefined): void {
    const keyHex = Buffer.from(nodeKey).toString('hex');
    const host = from === undefined ? undefined : sourceHost(from);
    if (
      !this.admitPerKey.allows(keyHex) ||
      (host !== undefined && !this.admitPerAddress.take(host)) ||
      !this.admitPerKey.take(keyHex)
    ) {
      this.c.stats.admitLimited++;
      this.c.log.debug({ peer: host }, 'ADMIT refused: rate limit');
      throw new OverlayError('RPC_TOO_MANY_IN_FLIGHT', 'too many admissions: try again later');
    }
  }

  private mint(nodeKey: Uint8Array): AdmittedMsg {
    const now = this.c.clock.wallNow();
    const nodeId = this.c.registry.nodeId(nodeKey, now, () => this.ringIdFor(nodeKey));
    const admission = issueAdmission(this.c.identity, nodeKey, nodeId, this.admissionTtlMs, now);
    this.c.stats.admitted++;
    this.c.log.debug({ nodeId }, 'admitted node');
    return {
      t: 'ADMITTED',
      nodeId,
      admission,
      ring: ringContacts(this.c.ring),
      bootstraps: this.c.bootstraps,
      k: this.c.k,
      n: this.c.n,
    };
  }
}
