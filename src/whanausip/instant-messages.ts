/**
 * WhanauSIP instant messages (RFC 3428) between nodes.
 *
 * The sender's node looks the recipient's key hash up in the Whanau DHT (the
 * same verified LOOKUP as a call, seed 003 section 4.7) and sends the message
 * over a TLS link pinned to the key in the recipient's self-certifying
 * record, so only the recipient's node can read it. The message is signed by
 * the sender's node key over (sender hash, recipient hash, time, nonce,
 * content type, SHA-256 of the body); the recipient's node takes it only if
 * the key its caller proved in the TLS handshake hashes to the claimed sender
 * and verifies that signature, inside a 30 s window with an unseen nonce, and
 * hands it to its registered phone with From `sip:<sender hash>@<node>`.
 * Nothing here trusts the DHT beyond the record's own signature: a wrong
 * record cannot be forged, only withheld (then the phone gets 404).
 *
 * No offline storage: see docs/design.md "WhanauSIP: messages and why there
 * are no offline messages".
 */
import { createHash } from 'node:crypto';
import { encode as cborEncode } from 'cborg';
import { sha1Hex } from '../identity/fingerprint.ts';
import type { Identity } from '../identity/identity.ts';
import { ReplayCache } from '../identity/replay-cache.ts';
import { verifyEd25519 } from '../identity/signature.ts';
import type { Caller, Payload, RpcEndpoint } from '../rpc/types.ts';
import type { Clock } from '../util/clock.ts';
import { fail, isOverlayError, OverlayError, ok, type Result } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import type { RecordLookup } from './whanau-daemon.ts';

export const IM_METHOD = 'whanausip.message';
export const IM_CONTEXT = 'whanausip/message/v1';
/** Largest body carried (bytes); the phone gets 413 above it. */
export const MAX_IM_BODY = 8 * 1024;
const HASH_RE = /^[0-9a-f]{40}$/;

export interface WhanauIm {
  from: string;
  to: string;
  ts: number;
  nonce: Uint8Array;
  /** Content-Type of the body ('' when none). */
  type: string;
  body: Uint8Array;
  sig: Uint8Array;
}

export function imTbs(m: Omit<WhanauIm, 'sig'>): Uint8Array {
  const h = new Uint8Array(createHash('sha256').update(m.body).digest());
  return cborEncode(['WHANAUSIP-MESSAGE', m.from, m.to, m.ts, m.nonce, m.type, h]);
}

/** Decode an RPC payload from the network. Never throws. */
export function decodeIm(p: unknown): Result<WhanauIm> {
  if (typeof p !== 'object' || p === null) return fail('not a map');
  const o = p as Record<string, unknown>;
  const { from, to, ts, nonce, type, body, sig } = o;
  if (typeof from !== 'string' || !HASH_RE.test(from)) return fail('bad from');
  if (typeof to !== 'string' || !HASH_RE.test(to)) return fail('bad to');
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts)) return fail('bad ts');
  if (!(nonce instanceof Uint8Array) || nonce.length !== 16) return fail('bad nonce');
  if (typeof type !== 'string' || type.length > 200 || /[\r\n]/.test(type)) return fail('bad type');
  if (!(body instanceof Uint8Array) || body.length > MAX_IM_BODY) return fail('bad body');
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return fail('bad sig');
  return ok({ from, to, ts, nonce, type, body, sig });
}

export interface WhanauMessengerComponents {
  identity: Identity;
  clock: Clock;
  random: Random;
  log: Logger;
  /** The DHT endpoint (known once the DHT member is up). */
  endpoint: () => RpcEndpoint;
  /** The verified LOOKUP of a key hash. */
  lookup: (hash: string) => Promise<RecordLookup>;
  /** Hand a verified message to this node's registered phone(s); resolves with how many took it. */
  deliver: (fromHash: string, body: Uint8Array, type: string | undefined) => Promise<number>;
}

export type ImOutcome = { status: number; reason: string };

export class WhanauMessenger {
  readonly stats = { sent: 0, received: 0, refused: 0 };
  private readonly c: WhanauMessengerComponents;
  private readonly replay: ReplayCache;
  private readonly ownHash: string;
  private readonly timeoutMs: number;

  constructor(c: WhanauMessengerComponents, init: { timeoutMs?: number } = {}) {
    this.c = c;
    this.ownHash = c.identity.id;
    this.replay = new ReplayCache({ clock: c.clock, windowMs: 30_000 });
    this.timeoutMs = init.timeoutMs ?? 10_000;
  }

  /** Sender's side: from this node's phone to the node of `to`; the SIP status for the phone. */
  async send(to: string, type: string | undefined, body: Uint8Array): Promise<ImOutcome> {
    const found = await this.c.lookup(to).catch(() => undefined);
    if (!found) return { status: 480, reason: 'Temporarily Unavailable: lookup failed' };
    if (found.notReady) return { status: 480, reason: 'Temporarily Unavailable: DHT not set up yet' };
    const r = found.record;
    if (!r) return { status: 404, reason: 'Not Found' };
    const unsigned: Omit<WhanauIm, 'sig'> = {
      from: this.ownHash,
      to,
      ts: this.c.clock.wallNow(),
      nonce: this.c.random.bytes(16),
      type: type ?? '',
      body,
    };
    const m: WhanauIm = { ...unsigned, sig: this.c.identity.sign(IM_CONTEXT, imTbs(unsigned)) };
    try {
      // The link is pinned to the key of the verified record: only the recipient's node can answer.
      const answer = (await this.c
        .endpoint()
        .request({ id: to, addr: `${r.host}:${r.port}`, key: r.publicKey }, IM_METHOD, m, {
          timeoutMs: this.timeoutMs,
        })) as { delivered?: unknown };
      this.stats.sent++;
      if (typeof answer?.delivered === 'number' && answer.delivered > 0) return { status: 200, reason: 'OK' };
      return { status: 480, reason: 'Temporarily Unavailable: no phone took the message' };
    } catch (e) {
      const why = (e as Error).message.replace(/[\r\n]/g, ' ').slice(0, 120);
      if (isOverlayError(e, 'RPC_TIMEOUT')) return { status: 408, reason: 'Request Timeout' };
      return { status: 480, reason: `Temporarily Unavailable: ${why}` };
    }
  }

  /** Recipient's side: the RPC handler of IM_METHOD. Refusals are OverlayErrors (the endpoint answers them). */
  async handle(_method: string, payload: Payload, caller: Caller): Promise<Payload> {
    const d = decodeIm(payload);
    const refuse = (code: 'DHT_BAD_REQUEST' | 'IDENTITY_BAD_SIGNATURE' | 'USER_UNKNOWN', why: string): never => {
      this.stats.refused++;
      this.c.log.info({ from: d.ok ? d.value.from.slice(0, 8) : undefined, why }, 'WhanauSIP MESSAGE refused');
      throw new OverlayError(code, why);
    };
    if (!d.ok) return refuse('DHT_BAD_REQUEST', d.error);
    const m = d.value;
    if (m.to !== this.ownHash) return refuse('USER_UNKNOWN', 'not this node');
    // The sender is who the TLS handshake proved, and its key signed this very message.
    if (sha1Hex(caller.key) !== m.from) return refuse('IDENTITY_BAD_SIGNATURE', 'sender is not the caller');
    const early = this.replay.peek(m.nonce, m.ts, m.from);
    if (!early.ok) throw new OverlayError(early.code, early.reason);
    const { sig, ...unsigned } = m;
    if (!verifyEd25519(caller.key, IM_CONTEXT, imTbs(unsigned), sig))
      return refuse('IDENTITY_BAD_SIGNATURE', 'bad signature');
    const fresh = this.replay.check(m.nonce, m.ts, m.from);
    if (!fresh.ok) throw new OverlayError(fresh.code, fresh.reason);
    const delivered = await this.c.deliver(m.from, m.body, m.type || undefined);
    this.stats.received++;
    this.c.log.info({ from: m.from.slice(0, 8), phones: delivered }, 'WhanauSIP MESSAGE delivered');
    return { delivered };
  }
}
