import type { Clock, Timer } from '../util/clock.ts';
import type { Peer } from './transport.ts';

/**
 * Server transactions in their last phase, reduced to what that phase needs: RFC 3261 17.2.2 Completed resends
 * the final response for each retransmitted request until Timer J; 17.2.1 Confirmed absorbs ACKs and
 * retransmitted INVITEs until Timer I (and a CANCEL still gets 200 with the INVITE's To tag, 9.2).
 *
 * A busy registrar holds tens of thousands of these (Timer J is 32 s over UDP), and each outlives every minor
 * garbage collection of its lifetime: objects and strings kept per entry were copied by each of them and then
 * marked by the major ones. So an entry here is a slot in parallel typed arrays, its response bytes and To tag
 * are copied into a byte ring outside the JavaScript heap, and its destination is a number (IPv4) and a port.
 * What stays on the heap per entry is its key (a flat string) and its map slot.
 */

/** Entries are dropped in batches this far apart; lookups treat an entry as gone from its `until` on. */
const SWEEP_SLACK_MS = 250;
/** Sequence numbers wrap here, so that a handle (sequence * 16 + queue) stays a small integer (no heap number). */
const SEQ_MASK = 0x3ff_ffff;
/** Distinct durations (Timer J, Timer I, and whatever test timers give) that get a queue each. */
const MAX_QUEUES = 16;
const FIRST_SLOTS = 256;
const FIRST_BYTES = 64 * 1024;
const HAS_RESPONSE = 1;
const IPV4 = 2;

/**
 * The entries of one duration. Timer J and Timer I are constants, so entries of one duration expire in the order
 * they were added: a first-in first-out ring, of which only the head needs watching.
 */
class Queue {
  readonly ms: number;
  readonly index: number;
  mask = FIRST_SLOTS - 1;
  /** Sequence number of the oldest entry still queued, and how many are queued. */
  headSeq = 0;
  count = 0;
  keys: Array<string | undefined> = new Array(FIRST_SLOTS).fill(undefined);
  until = new Float64Array(FIRST_SLOTS);
  off = new Int32Array(FIRST_SLOTS);
  /** Response bytes at off, then the To tag's. */
  len = new Int32Array(FIRST_SLOTS);
  tagLen = new Uint8Array(FIRST_SLOTS);
  flags = new Uint8Array(FIRST_SLOTS);
  ip4 = new Uint32Array(FIRST_SLOTS);
  port = new Uint16Array(FIRST_SLOTS);
  /** Addresses that are not IPv4 dotted quads, as given. */
  addrs: Array<string | undefined> = new Array(FIRST_SLOTS).fill(undefined);
  bytes = Buffer.allocUnsafeSlow(FIRST_BYTES);
  /** Where the next entry's bytes go. */
  w = 0;

  constructor(ms: number, index: number) {
    this.ms = ms;
    this.index = index;
  }

  /** Offset for n more bytes in the byte ring (growing it if they do not fit). */
  reserve(n: number): number {
    if (this.count === 0) this.w = 0;
    const start = this.count === 0 ? 0 : this.off[this.headSeq & this.mask];
    const cap = this.bytes.length;
    if (this.w >= start) {
      // Live bytes are [start, w): free are [w, cap) and, wrapping round, [0, start).
      if (cap - this.w >= n) return this.w;
      if (n < start) return 0;
    } else if (this.w + n < start) return this.w; // wrapped: free is [w, start)
    this.growBytes(n);
    return this.w;
  }

  /** A larger byte ring with the live entries' bytes copied to its start, in order. */
  private growBytes(n: number): void {
    let live = 0;
    for (let k = 0; k < this.count; k++) {
      const i = (this.headSeq + k) & this.mask;
      live += this.len[i] + this.tagLen[i];
    }
    let cap = this.bytes.length * 2;
    while (cap < (live + n) * 2) cap *= 2;
    const next = Buffer.allocUnsafeSlow(cap);
    let w = 0;
    for (let k = 0; k < this.count; k++) {
      const i = (this.headSeq + k) & this.mask;
      const size = this.len[i] + this.tagLen[i];
      this.bytes.copy(next, w, this.off[i], this.off[i] + size);
      this.off[i] = w;
      w += size;
    }
    this.bytes = next;
    this.w = w;
  }

  /** Twice the slots, each live entry at its sequence number's place (handles stay valid). */
  growSlots(): void {
    const cap = (this.mask + 1) * 2;
    const mask = cap - 1;
    const keys: Array<string | undefined> = new Array(cap).fill(undefined);
    const addrs: Array<string | undefined> = new Array(cap).fill(undefined);
    const until = new Float64Array(cap);
    const off = new Int32Array(cap);
    const len = new Int32Array(cap);
    const tagLen = new Uint8Array(cap);
    const flags = new Uint8Array(cap);
    const ip4 = new Uint32Array(cap);
    const port = new Uint16Array(cap);
    for (let k = 0; k < this.count; k++) {
      const seq = (this.headSeq + k) & SEQ_MASK;
      const i = seq & this.mask;
      const j = seq & mask;
      keys[j] = this.keys[i];
      addrs[j] = this.addrs[i];
      until[j] = this.until[i];
      off[j] = this.off[i];
      len[j] = this.len[i];
      tagLen[j] = this.tagLen[i];
      flags[j] = this.flags[i];
      ip4[j] = this.ip4[i];
      port[j] = this.port[i];
    }
    this.keys = keys;
    this.addrs = addrs;
    this.until = until;
    this.off = off;
    this.len = len;
    this.tagLen = tagLen;
    this.flags = flags;
    this.ip4 = ip4;
    this.port = port;
    this.mask = mask;
  }
}

/** The IPv4 dotted quad as a number, or -1 when the address is anything else. */
function ipv4(a: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && digits < 3) {
      // No leading zeros: the text must come back as it was written.
      if (digits === 1 && part === 0) return -1;
      part = part * 10 + c - 0x30;
      digits++;
      if (part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return n * 256 + part;
}

const dotted = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * The lingering server transactions of a transaction layer. One clock timer serves them all: each duration is a
 * first-in first-out queue and only the heads need watching. A lingering transaction is named by a handle (a
 * small integer) that `find` gives and `resend` and `toTag` take.
 */
export class Lingering {
  private readonly clock: Clock;
  private readonly byKey = new Map<string, number>();
  private readonly queues: Queue[] = [];
  private timer: Timer | undefined;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The handle of the lingering transaction with this key whose phase has not ended, or -1. */
  find(key: string): number {
    const h = this.byKey.get(key);
    if (h === undefined) return -1;
    const q = this.queues[h & 15];
    const seq = h >>> 4;
    const i = seq & q.mask;
    if (((seq - q.headSeq) & SEQ_MASK) < q.count && q.keys[i] === key && q.until[i] > this.clock.now()) return h;
    this.byKey.delete(key);
    return -1;
  }

  /** Sends the final response of a lingering transaction again; false when it keeps none (Confirmed). */
  resend(h: number, send: (bytes: Buffer, to: Peer) => void): boolean {
    const q = this.queues[h & 15];
    const i = (h >>> 4) & q.mask;
    if ((q.flags[i] & HAS_RESPONSE) === 0) return false;
    const address = (q.flags[i] & IPV4) !== 0 ? dotted(q.ip4[i]) : (q.addrs[i] as string);
    // A copy: the ring's bytes are reused once the entry has gone, and the send may wait for the end of the turn.
    send(Buffer.from(q.bytes.subarray(q.off[i], q.off[i] + q.len[i])), { transport: 'UDP', address, port: q.port[i] });
    return true;
  }

  /** The To tag an INVITE transaction's responses carried, if it kept one. */
  toTag(h: number): string | undefined {
    const q = this.queues[h & 15];
    const i = (h >>> 4) & q.mask;
    if (q.tagLen[i] === 0) return undefined;
    const at = q.off[i] + q.len[i];
    return q.bytes.toString('latin1', at, at + q.tagLen[i]);
  }

  /**
   * Keep a server transaction for `ms` as its final response's bytes (when given; they are copied) sent over UDP
   * to `to`, and the To tag of its responses (when given). False when it cannot be kept this way (a destination
   * other than a UDP peer, a To tag beyond 255 bytes, too many distinct durations): the transaction then runs its
   * own timer.
   */
  add(key: string, bytes: Uint8Array | undefined, to: Peer, toTag: string | undefined, ms: number): boolean {
    if (to.transport !== 'UDP' || to.connId !== undefined || to.connectionOnly) return false;
    const tagLen = toTag === undefined ? 0 : toTag.length;
    if (tagLen > 255) return false;
    // A tag is a token (RFC 3261 25.1): printable ASCII, one byte per character.
    for (let k = 0; k < tagLen; k++) {
      const c = (toTag as string).charCodeAt(k);
      if (c < 0x21 || c > 0x7e) return false;
    }
    let q: Queue | undefined;
    for (let k = 0; k < this.queues.length; k++)
      if (this.queues[k].ms === ms) {
        q = this.queues[k];
        break;
      }
    if (q === undefined) {
      if (this.queues.length >= MAX_QUEUES) return false;
      q = new Queue(ms, this.queues.length);
      this.queues.push(q);
    }
    if (q.count > q.mask) q.growSlots();
    const len = bytes === undefined ? 0 : bytes.length;
    const at = q.reserve(len + tagLen);
    if (bytes !== undefined) q.bytes.set(bytes, at);
    for (let k = 0; k < tagLen; k++) q.bytes[at + len + k] = (toTag as string).charCodeAt(k);
    q.w = at + len + tagLen;
    const seq = (q.headSeq + q.count) & SEQ_MASK;
    const i = seq & q.mask;
    q.count++;
    const until = this.clock.now() + ms;
    q.keys[i] = key;
    q.until[i] = until;
    q.off[i] = at;
    q.len[i] = len;
    q.tagLen[i] = tagLen;
    const n = ipv4(to.address);
    q.flags[i] = (bytes === undefined ? 0 : HAS_RESPONSE) | (n >= 0 ? IPV4 : 0);
    q.ip4[i] = n >= 0 ? n : 0;
    q.addrs[i] = n >= 0 ? undefined : to.address;
    q.port[i] = to.port;
    const h = seq * 16 + q.index;
    this.byKey.set(key, h);
    if (q.count === 1) this.arm(until);
    return true;
  }

  private arm(at: number): void {
    const when = at + SWEEP_SLACK_MS;
    if (this.timer !== undefined && this.timerAt <= when) return;
    this.timer?.cancel();
    this.timerAt = when;
    this.timer = this.clock.setTimer(when - this.clock.now(), () => this.sweep());
  }

  private sweep(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const q of this.queues) {
      while (q.count > 0) {
        const seq = q.headSeq;
        const i = seq & q.mask;
        if (q.until[i] > now) {
          next = Math.min(next, q.until[i]);
          break;
        }
        const key = q.keys[i] as string;
        if (this.byKey.get(key) === seq * 16 + q.index) this.byKey.delete(key);
        q.keys[i] = undefined;
        q.addrs[i] = undefined;
        q.headSeq = (seq + 1) & SEQ_MASK;
        q.count--;
      }
      // Once a burst has passed, its byte ring goes back to the first size.
      if (q.count === 0 && q.bytes.length > FIRST_BYTES) q.bytes = Buffer.allocUnsafeSlow(FIRST_BYTES);
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  }
}
