/**
 * HTTP digest authentication of phones (RFC 3261 section 22.4, RFC 8760 for
 * SHA-256, RFC 2617 MD5 for older phones).
 *
 * - Challenge: 401 with WWW-Authenticate (REGISTER, a UAS/registrar) or 407
 *   with Proxy-Authenticate (INVITE and proxied requests), one header per
 *   algorithm, SHA-256 first (RFC 8760 section 2.4: the client uses the
 *   first one it supports), each with qop="auth".
 * - Nonces are stateless: issue time, 64 random bits and an HMAC under a
 *   per-process secret over both and the realm. A forged nonce is refused;
 *   one older than the lifetime is answered with a fresh challenge marked
 *   stale=true (RFC 2617 3.2.1), so the phone retries without asking its user.
 * - Replay: qop=auth is required, and each nonce's nonce-count must grow
 *   (RFC 2617 3.2.2). The counts live in a bounded table; a nonce pushed out
 *   of it can never be accepted again (the eviction watermark), so a full
 *   table costs a phone one extra challenge, never a replay.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import { fail, ok, type Result } from '../util/errors.ts';
import type { IncomingRequest } from './element.ts';
import { readQuoted, splitTopLevel, trimLws } from './header-values.ts';
import { getHeaders, type Header, type SipRequest } from './message.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { logRefusal } from '../util/refusal.ts';

export type DigestAlgorithm = 'SHA-256' | 'MD5';
/** SHA-256 first: RFC 8760 section 2.4, a client picks the first challenge whose algorithm it supports. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

/** H(username ":" realm ":" password) per algorithm, hex (RFC 2617 3.2.2.2 A1). */
export type DigestHa1 = Record<DigestAlgorithm, string>;

/** Where the HA1 of a user name comes from (a credential store). */
export interface DigestCredentials {
  ha1(user: string): DigestHa1 | undefined;
}

export function digestHash(alg: DigestAlgorithm, s: string): string {
  return createHash(alg === 'MD5' ? 'md5' : 'sha256')
    .update(s, 'utf8')
    .digest('hex');
}

export function digestHa1(user: string, realm: string, password: string): DigestHa1 {
  const a1 = `${user}:${realm}:${password}`;
  return { 'SHA-256': digestHash('SHA-256', a1), MD5: digestHash('MD5', a1) };
}

/** The request-digest of RFC 2617 3.2.2.1 with qop=auth (or without qop, RFC 2069, for the test vectors). */
export function digestResponse(
  alg: DigestAlgorithm,
  ha1: string,
  p: { method: string; uri: string; nonce: string; nc?: string; cnonce?: string; qop?: string },
): string {
  const ha2 = digestHash(alg, `${p.method}:${p.uri}`);
  const mid = p.qop ? `${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}` : p.nonce;
  return digestHash(alg, `${ha1}:${mid}:${ha2}`);
}

/** The auth-params of one `Digest ...` credentials or challenge value, names lower-cased. */
export function parseDigestParams(value: string): Result<Map<string, string>> {
  const m = /^\s*digest\s+/i.exec(value);
  if (!m) return fail('not a Digest value');
  const out = new Map<string, string>();
  for (const part of splitTopLevel(value.slice(m[0].length), ',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return fail('an auth-param without a name or value');
    const name = trimLws(part.slice(0, eq)).toLowerCase();
    const raw = trimLws(part.slice(eq + 1));
    let v = raw;
    if (raw.startsWith('"')) {
      const q = readQuoted(raw, 0);
      if (!q || q.end !== raw.length) return fail(`auth-param ${name}: bad quoted string`);
      v = q.text;
    }
    if (out.has(name)) return fail(`auth-param ${name} given twice`);
    out.set(name, v);
  }
  return ok(out);
}

/** Who may use a server's phone side: anyone (open registration) or phones that pass digest authentication. */
export type PhoneAuth = 'open' | { digest: DigestAuthenticator; users(): number };

export type DigestCheck =
  | { ok: true; user: string }
  | {
      ok: false;
      why: 'missing' | 'malformed' | 'stale' | 'forged-nonce' | 'unknown-user' | 'wrong-response' | 'replay';
    };

export interface DigestComponents {
  clock: Clock;
  credentials: DigestCredentials;
  /** HMAC key of the nonces; random per process when absent (a restart costs each phone one extra challenge). */
  secret?: Uint8Array;
  /** Where refusals (wrong password, replay, forged nonce) are logged with their reason code (util/refusal.ts). */
  logger?: Logger;
}

export interface DigestInit {
  realm: string;
  /** How long a nonce may be used (ms, default 5 min). */
  nonceLifetimeMs?: number;
  /** Nonces whose counts are tracked at once (default 100,000). */
  maxTrackedNonces?: number;
  /**
   * Algorithms offered, in this order, and the only ones accepted (default SHA-256 then MD5). Old phones
   * built on libre before 2.x (baresip 1.0 in Debian 12) give up at the first challenge whose algorithm they
   * do not know instead of trying the next one: for them, MD5 alone.
   */
  algorithms?: readonly DigestAlgorithm[];
}

/** `SHA-256,MD5`-style list (case-insensitive) as algorithms. */
export function parseDigestAlgorithms(s: string): Result<DigestAlgorithm[]> {
  const out: DigestAlgorithm[] = [];
  for (const part of s.split(',')) {
    const alg = DIGEST_ALGORITHMS.find((a) => a === part.trim().toUpperCase());
    if (!alg || out.includes(alg)) return fail(`'${part.trim()}' is not SHA-256 or MD5 (or is listed twice)`);
    out.push(alg);
  }
  return ok(out);
}

/** OptionSpec.check for `--digest`. */
export function digestCheck(s: string): string | undefined {
  const r = parseDigestAlgorithms(s);
  return r.ok ? undefined : r.error;
}

export class DigestAuthenticator {
  readonly realm: string;
  readonly stats = { challenged: 0, stale: 0, refused: 0, accepted: 0 };
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly credentials: DigestCredentials;
  private readonly secret: Uint8Array;
  private readonly lifetimeMs: number;
  private readonly maxTracked: number;
  private readonly algorithms: readonly DigestAlgorithm[];
  /** nonce -> highest nonce-count accepted; insertion order is first-use order. */
  private readonly counts = new Map<string, { nc: number; issued: number }>();
  /** Issue time of the newest nonce pushed out of `counts`: a nonce issued at or before it is never accepted again. */
  private watermark = Number.NEGATIVE_INFINITY;

  constructor(c: DigestComponents, init: DigestInit) {
    this.clock = c.clock;
    this.log = c.logger ?? silentLogger;
    this.credentials = c.credentials;
    this.secret = c.secret ?? randomBytes(32);
    this.realm = init.realm;
    this.lifetimeMs = init.nonceLifetimeMs ?? 5 * 60_000;
    this.maxTracked = init.maxTrackedNonces ?? 100_000;
    this.algorithms = init.algorithms && init.algorithms.length > 0 ? init.algorithms : DIGEST_ALGORITHMS;
  }

  newNonce(): string {
    const head = `${Math.floor(this.clock.now()).toString(36)}.${randomBytes(8).toString('base64url')}`;
    return `${head}.${this.mac(head)}`;
  }

  /** The challenge headers: WWW-Authenticate (401) or Proxy-Authenticate (407), one per algorithm in order. */
  challenge(proxy: boolean, stale = false, md5Only = false): Header[] {
    const name = proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate';
    const nonce = this.newNonce();
    const algs: readonly DigestAlgorithm[] = md5Only && this.algorithms.includes('MD5') ? ['MD5'] : this.algorithms;
    return algs.map((alg) => ({
      name,
      value: `Digest realm="${this.realm}", nonce="${nonce}", algorithm=${alg}, qop="auth"${stale ? ', stale=true' : ''}`,
    }));
  }

  /** Check the request's Authorization (or Proxy-Authorization) credentials for this realm. */
  check(req: SipRequest, proxy: boolean): DigestCheck {
    const values = getHeaders(req, proxy ? 'Proxy-Authorization' : 'Authorization');
    let p: Map<string, string> | undefined;
    for (const v of values) {
      const q = parseDigestParams(v);
      // RFC 3261 22.3: a request may carry credentials for several realms; ours are the ones to check.
      if (q.ok && q.value.get('realm') === this.realm) p = q.value;
    }
    if (!p) return { ok: false, why: values.length > 0 ? 'malformed' : 'missing' };
    const user = p.get('username');
    const nonce = p.get('nonce');
    const uri = p.get('uri');
    const response = p.get('response')?.toLowerCase();
    const algName = (p.get('algorithm') ?? 'MD5').toUpperCase();
    const alg = this.algorithms.find((a) => a === algName);
    const nc = p.get('nc');
    const cnonce = p.get('cnonce');
    // qop=auth is required: without a nonce-count nothing tells a replay from a retry.
    if (!user || !nonce || !uri || !response || !alg || p.get('qop') !== 'auth' || !cnonce || !nc)
      return { ok: false, why: 'malformed' };
    if (!/^[0-9a-fA-F]{8}$/.test(nc)) return { ok: false, why: 'malformed' };
    const issued = this.nonceTime(nonce);
    if (issued === undefined) return { ok: false, why: 'forged-nonce' };
    const ha1 = this.credentials.ha1(user);
    if (!ha1) return { ok: false, why: 'unknown-user' };
    const expect = digestResponse(alg, ha1[alg], { method: req.method, uri, nonce, nc, cnonce, qop: 'auth' });
    if (!sameHex(expect, response)) return { ok: false, why: 'wrong-response' };
    // Checked after the response: only the holder of the password learns that its nonce went stale.
    if (this.clock.now() - issued > this.lifetimeMs || issued <= this.watermark) return { ok: false, why: 'stale' };
    const count = Number.parseInt(nc, 16);
    const seen = this.counts.get(nonce);
    if (seen && count <= seen.nc) return { ok: false, why: 'replay' };
    this.track(nonce, count, issued);
    return { ok: true, user };
  }

  /**
   * Authenticate `inc` or answer it: the authenticated user name, or undefined after a 401/407 challenge
   * (stale=true for an expired nonce) or a 403 for a replayed or forged one.
   */
  authenticate(inc: IncomingRequest, proxy: boolean): string | undefined {
    const r = this.check(inc.request, proxy);
    if (r.ok) {
      this.stats.accepted++;
      // Its responses may now follow the Via as RFC 3261 18.2.2 says (maddr included; see response-route.ts).
      inc.authenticated = true;
      return r.user;
    }
    if (r.why === 'replay' || r.why === 'forged-nonce' || r.why === 'unknown-user' || r.why === 'wrong-response')
      logRefusal(
        this.log,
        r.why === 'replay' ? 'auth_replay' : r.why === 'forged-nonce' ? 'auth_forged_nonce' : 'auth_failed',
        inc.source,
        { user: this.claimedUser(inc.request, proxy), method: inc.request.method, why: r.why },
        `phone refused: ${r.why === 'replay' ? 'digest replayed' : r.why === 'forged-nonce' ? 'nonce not issued here' : 'wrong user name or password'}`,
      );
    if (r.why === 'replay' || r.why === 'forged-nonce') {
      this.stats.refused++;
      inc.respond(403, `Forbidden: ${r.why === 'replay' ? 'nonce count reused' : 'nonce not issued here'}`);
      return undefined;
    }
    if (r.why === 'stale') this.stats.stale++;
    else this.stats.challenged++;
    if (r.why === 'unknown-user' || r.why === 'wrong-response') this.stats.refused++;
    const status = proxy ? 407 : 401;
    inc.respond(status, proxy ? 'Proxy Authentication Required' : 'Unauthorized', {
      // Browser phones (JsSIP 3) know MD5 only, and read the last challenge of several (not the first they support,
      // as RFC 8760 asks): over a WebSocket (always WSS but on loopback) MD5 alone is offered, when it is offered.
      headers: this.challenge(
        proxy,
        r.why === 'stale',
        inc.source.transport === 'WS' || inc.source.transport === 'WSS',
      ),
    });
    return undefined;
  }

  /** The user name a request's credentials for this realm give (for a refusal's log line only). */
  private claimedUser(req: SipRequest, proxy: boolean): string | undefined {
    for (const v of getHeaders(req, proxy ? 'Proxy-Authorization' : 'Authorization')) {
      const q = parseDigestParams(v);
      if (q.ok && q.value.get('realm') === this.realm) return q.value.get('username')?.slice(0, 64);
    }
    return undefined;
  }

  private mac(head: string): string {
    return createHmac('sha256', this.secret).update(`${head}.${this.realm}`).digest('base64url').slice(0, 22);
  }

  /** The issue time of a nonce this authenticator made, else undefined. */
  private nonceTime(nonce: string): number | undefined {
    const cut = nonce.lastIndexOf('.');
    if (cut <= 0 || nonce.length > 80) return undefined;
    const head = nonce.slice(0, cut);
    const mac = Buffer.from(nonce.slice(cut + 1));
    const good = Buffer.from(this.mac(head));
    if (mac.length !== good.length || !timingSafeEqual(mac, good)) return undefined;
    const t = Number.parseInt(head.slice(0, head.indexOf('.')), 36);
    return Number.isFinite(t) ? t : undefined;
  }

  private track(nonce: string, nc: number, issued: number): void {
    const now = this.clock.now();
    this.counts.delete(nonce);
    this.counts.set(nonce, { nc, issued });
    if (this.counts.size <= this.maxTracked) return;
    for (const [k, v] of this.counts) {
      if (this.counts.size <= this.maxTracked) break;
      this.counts.delete(k);
      // An expired nonce is refused by age anyway; only a live one moves the watermark.
      if (now - v.issued <= this.lifetimeMs) this.watermark = Math.max(this.watermark, v.issued);
    }
  }
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The client side (a UA answering a challenge, RFC 3261 22.2): the Authorization value for `challenge` (one
 * WWW-Authenticate or Proxy-Authenticate value), or undefined when it is not a digest challenge we can answer.
 */
export function digestAuthorization(
  challenge: string,
  c: { user: string; password: string; method: string; uri: string; nc?: number; cnonce?: string },
): string | undefined {
  const parsed = parseDigestParams(challenge);
  const p = parsed.ok ? parsed.value : undefined;
  const realm = p?.get('realm');
  const nonce = p?.get('nonce');
  const alg = DIGEST_ALGORITHMS.find((a) => a === (p?.get('algorithm') ?? 'MD5').toUpperCase());
  if (!p || realm === undefined || !nonce || !alg) return undefined;
  const nc = (c.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = c.cnonce ?? randomBytes(8).toString('hex');
  const ha1 = digestHash(alg, `${c.user}:${realm}:${c.password}`);
  const response = digestResponse(alg, ha1, { method: c.method, uri: c.uri, nonce, nc, cnonce, qop: 'auth' });
  return `Digest username="${c.user}", realm="${realm}", nonce="${nonce}", uri="${c.uri}", response="${response}", algorithm=${alg}, cnonce="${cnonce}", qop=auth, nc=${nc}`;
}
