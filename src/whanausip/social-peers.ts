/**
 * A WhanauSIP node's trusted social peers (seed 003 section 4.3) as the DHT
 * core sees them: the persisted book (peer-book.ts) names each by its hash and
 * an address, and a peer counts only once we hold a key that hashes to that
 * hash, learned out of band, from a link it keeps to us (a friend behind a NAT
 * we relay for), or shown by one TLS handshake (peer-key.ts).
 */
import type tls from 'node:tls';
import type { WhanauNode } from '../dht/whanau/node.ts';
import { sha1Hex } from '../identity/fingerprint.ts';
import type { TlsRpcEndpoint } from '../rpc/tls-endpoint.ts';
import type { NodeRef } from '../rpc/types.ts';
import type { Clock } from '../util/clock.ts';
import { isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { PeerBook, PeerSpec } from './peer-book.ts';
import { probePeerKey } from './peer-key.ts';

export interface SocialPeersDeps {
  book: PeerBook;
  /** The core: a peer whose key we hold is added to it. */
  node: Pick<WhanauNode, 'addPeer'>;
  /** Keys of the links open now (a friend behind a NAT is known by its link), and the connect timeout. */
  endpoint: Pick<TlsRpcEndpoint, 'openLinkKeys' | 'limits'>;
  /** Our client TLS context, for the handshake that shows a peer's key. */
  tlsContext: tls.SecureContext;
  clock: Clock;
  log: Logger;
  /** Counted here: handshakes that did not show a key (unreachable, or a key of another hash). */
  stats: { probesFailed: number };
}

export class SocialPeers {
  constructor(private readonly d: SocialPeersDeps) {}

  /** Friends whose key we know, in the book's order. */
  friends(): NodeRef[] {
    return this.d.book.list().flatMap((p) => (p.key ? [{ id: p.hash, addr: p.addr, key: p.key }] : []));
  }

  /** Is `hash` in the book (whatever we know of its key)? */
  has(hash: string): boolean {
    return this.d.book.get(hash) !== undefined;
  }

  /**
   * Add (and persist) a social peer; the link counts once the peer has added
   * us too. A key given here (known out of band) is pinned at once if it
   * hashes to `spec.hash`; otherwise a handshake must show one that does.
   */
  async add(spec: PeerSpec, key?: Uint8Array): Promise<boolean> {
    this.d.book.upsert(spec, this.d.clock.wallNow());
    if (key && sha1Hex(key) === spec.hash) this.d.book.setKey(spec.hash, key);
    return this.resolve(spec.hash);
  }

  /**
   * Make every peer in the book known to the core: peers whose key we have
   * are added at once; for the others one TLS handshake must show a key that
   * hashes to the configured hash. Returns how many peers are known.
   */
  async resolveAll(timeoutMs: number): Promise<number> {
    const results = await Promise.all(this.d.book.list().map((p) => this.resolve(p.hash, timeoutMs)));
    return results.filter(Boolean).length;
  }

  private async resolve(hash: string, timeoutMs = this.d.endpoint.limits.connectTimeoutMs): Promise<boolean> {
    const { book, endpoint, clock, log } = this.d;
    const p = book.get(hash);
    if (!p) return false;
    let key = p.key;
    // A friend behind a NAT cannot be dialled, but keeps a link to us (we relay for it): its key is that link's.
    if (!key) {
      key = endpoint.openLinkKeys().find((k) => sha1Hex(k) === p.hash);
      if (key) book.setKey(p.hash, key);
    }
    if (!key) {
      try {
        key = await probePeerKey(p.addr, p.hash, { context: this.d.tlsContext, clock, timeoutMs });
        book.setKey(p.hash, key);
      } catch (e) {
        this.d.stats.probesFailed++;
        const level = isOverlayError(e, 'RPC_PEER_KEY_MISMATCH') ? 'warn' : 'debug';
        log[level]({ peer: p.hash.slice(0, 8), addr: p.addr, err: (e as Error).message }, 'peer key not learned');
        return false;
      }
    }
    this.d.node.addPeer({ id: p.hash, addr: p.addr, key });
    return true;
  }
}
