/**
 * Refusals of a phone or a peer, logged in one shape a log watcher can rely
 * on (fail2ban: examples/fail2ban/): a warn line whose first fields are
 * `"event":"refused","reason":"<code>","src":"<address>"`, then the source
 * port and details. The reason codes are stable: a filter written against
 * them keeps working, so codes are added, never renamed or reused.
 */
import type { ErrorCode } from './errors.ts';
import type { Logger } from './log.ts';

/** Every reason code, with what it means (the README's table is generated from the same words). */
export const REFUSAL_REASONS = {
  auth_failed: 'a phone gave a wrong password or an unknown user name (SIP digest)',
  auth_replay: "a phone's digest reused a nonce count (a replayed request)",
  auth_forged_nonce: 'a phone answered a nonce this daemon never issued',
  wrong_user: 'an authenticated phone asked to act as another user',
  no_phone_users: 'no phone users are configured, so every REGISTER is refused',
  not_registered: 'a phone called as a user not registered at this adapter',
  name_rate: 'too many new names from one adapter or address per minute',
  name_quota: 'an adapter used up its total of new names',
  name_taken: 'a name is already bound to another key',
  invite_invalid: 'an enrolment token was missing, unknown, spent, expired or for another name',
  bad_signature: 'a signature did not verify',
  bad_certificate: 'a user certificate was refused (strict mode)',
  bad_key: 'a key was malformed or of an unsupported type',
  stale: "a message's timestamp was outside the accepted window",
  replay: 'a signed message was replayed',
  not_admitted: 'a node that was not admitted asked for a ring service',
  admit_rate: 'too many admissions from one node key or address',
  message_rate: 'too many messages relayed for one address (WhanauSIP gateway)',
  malformed: 'a malformed message',
  refused: 'another refusal (see the err field)',
} as const;

export type RefusalReason = keyof typeof REFUSAL_REASONS;

/** The reason code of a refusal carried as an error code (the bootstrap's ERROR answers). */
export function refusalReasonOf(code: ErrorCode): RefusalReason {
  switch (code) {
    case 'USER_NAME_RATE':
      return 'name_rate';
    case 'USER_NAME_QUOTA':
      return 'name_quota';
    case 'USER_NAME_TAKEN':
      return 'name_taken';
    case 'USER_INVITE_INVALID':
      return 'invite_invalid';
    case 'IDENTITY_BAD_SIGNATURE':
    case 'VERIFICATION_FAILED':
      return 'bad_signature';
    case 'IDENTITY_BAD_CERTIFICATE':
      return 'bad_certificate';
    case 'IDENTITY_BAD_KEY':
      return 'bad_key';
    case 'IDENTITY_STALE':
      return 'stale';
    case 'IDENTITY_REPLAY':
      return 'replay';
    case 'RPC_REFUSED':
    case 'DHT_ACCESS_DENIED':
      return 'not_admitted';
    case 'RPC_TOO_MANY_IN_FLIGHT':
      return 'admit_rate';
    case 'RPC_MALFORMED':
    case 'SIP_MALFORMED':
      return 'malformed';
    default:
      return 'refused';
  }
}

/** Split `host:port` / `[v6]:port` (a transport's peer address) into its address and port. */
export function splitSource(src: string | undefined): { src?: string; srcPort?: number } {
  if (src === undefined) return {};
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(src) ?? /^([^:]+):(\d+)$/.exec(src);
  return m ? { src: m[1], srcPort: Number(m[2]) } : { src };
}

/**
 * A flood of refusals (spoofed UDP requests with made-up credentials cost
 * the sender nothing) must not fill the disk: per source address, at most
 * LINES_PER_WINDOW lines per window are written; the rest are counted and
 * the count goes out with the source's next line (`suppressed`). That is far
 * more than a fail2ban jail needs to ban. The window is read from the wall
 * clock: this is logging plumbing, not protocol state.
 */
const WINDOW_MS = 10_000;
const LINES_PER_WINDOW = 20;
const MAX_SOURCES = 10_000;
const recent = new Map<string, { since: number; lines: number; suppressed: number }>();

/** Whether a line for `src` may be written now; the count of lines held back before it, if any. */
function admit(src: string, now: number): { write: boolean; suppressed: number } {
  let r = recent.get(src);
  if (!r || now - r.since >= WINDOW_MS) {
    if (!r && recent.size >= MAX_SOURCES) recent.clear();
    const suppressed = r?.suppressed ?? 0;
    r = { since: now, lines: 0, suppressed: 0 };
    recent.set(src, r);
    r.lines++;
    return { write: true, suppressed };
  }
  if (r.lines >= LINES_PER_WINDOW) {
    r.suppressed++;
    return { write: false, suppressed: 0 };
  }
  r.lines++;
  return { write: true, suppressed: 0 };
}

/**
 * Log one refusal. `src` is the address alone (IPv4 or IPv6, no port), so a
 * filter can take it as the host to ban; `srcPort` follows it.
 */
export function logRefusal(
  log: Logger,
  reason: RefusalReason,
  source: { address: string; port?: number } | string | undefined,
  detail: Record<string, unknown>,
  msg: string,
  now = Date.now(),
): void {
  const where = typeof source === 'string' ? splitSource(source) : { src: source?.address, srcPort: source?.port };
  const src = where.src ?? 'unknown';
  const gate = admit(src, now);
  if (!gate.write) return;
  const held = gate.suppressed > 0 ? { suppressed: gate.suppressed } : {};
  log.warn({ event: 'refused', reason, src, srcPort: where.srcPort, ...detail, ...held }, msg);
}
