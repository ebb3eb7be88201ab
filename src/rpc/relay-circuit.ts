/**
 * Relay addresses and the byte stream a circuit is (rpc/relay.ts): what TLS runs over between a node and a node
 * behind a NAT when no direct connection opens.
 */
import { Duplex } from 'node:stream';
import { fail, ok, type Result } from '../util/errors.ts';
import { parseAddr } from './tls-dial.ts';
import type { NodeRef } from './types.ts';

export const RELAY_PREFIX = 'relay:';

export function isRelayAddr(addr: string): boolean {
  return addr.startsWith(RELAY_PREFIX);
}

/** `relay:<addr>~<key b64url>|...`: how to reach a client through its relays (at most 3 fit a location record). */
export function formatRelayAddr(relays: readonly NodeRef[]): string {
  return RELAY_PREFIX + relays.map((r) => `${r.addr}~${Buffer.from(r.key).toString('base64url')}`).join('|');
}

/** The relays a relay address names (id unknown: relays are pinned by key alone). */
export function parseRelayAddr(addr: string): Result<NodeRef[]> {
  if (!isRelayAddr(addr)) return fail('not a relay address');
  const out: NodeRef[] = [];
  for (const part of addr.slice(RELAY_PREFIX.length).split('|')) {
    const i = part.lastIndexOf('~');
    if (i < 0) return fail(`relay '${part}' has no key`);
    const a = part.slice(0, i);
    const key = Buffer.from(part.slice(i + 1), 'base64url');
    if (!parseAddr(a).ok || key.length !== 32) return fail(`bad relay '${part}'`);
    out.push({ id: '', addr: a, key: new Uint8Array(key) });
  }
  return out.length > 0 && out.length <= 4 ? ok(out) : fail('a relay address names 1 to 4 relays');
}

/** Largest chunk one `relay.data` carries (a TLS record is at most 16 KiB plus overhead). */
export const MAX_CHUNK = 32 * 1024;
export const FORWARD_TIMEOUT_MS = 5000;

/** One end of a circuit as a byte stream (TLS runs over it). */
export class CircuitStream extends Duplex {
  private outSeq = 0;
  private inSeq = 0;
  private readonly early = new Map<number, Uint8Array>();
  private ended = false;

  constructor(
    private readonly sendChunk: (seq: number, b: Uint8Array) => Promise<unknown>,
    private readonly sendClose: () => void,
  ) {
    super({ allowHalfOpen: false });
  }

  /** Bytes from the other end, in their order (a relay forwards in order; `seq` guards against any reordering). */
  deliver(seq: number, b: Uint8Array): void {
    if (this.destroyed || seq < this.inSeq || this.early.size > 256) return;
    this.early.set(seq, b);
    for (let next = this.early.get(this.inSeq); next !== undefined; next = this.early.get(this.inSeq)) {
      this.early.delete(this.inSeq);
      this.inSeq++;
      this.push(Buffer.from(next));
    }
  }

  /** The other end closed. */
  remoteClosed(): void {
    this.ended = true;
    this.push(null);
    this.destroy();
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    // Not waiting for the relay's answer: chunks leave in order on one link; a failure ends the circuit.
    for (let off = 0; off < chunk.length; off += MAX_CHUNK) {
      const seq = this.outSeq++;
      this.sendChunk(seq, new Uint8Array(chunk.subarray(off, off + MAX_CHUNK))).catch(() => this.destroy());
    }
    cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.ended) this.sendClose();
    this.ended = true;
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.ended) this.sendClose();
    this.ended = true;
    cb(err);
  }
}
