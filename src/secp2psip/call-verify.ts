/**
 * The two signature checks of every call (the callee's adapter checks the
 * INVITE, the caller's the REDIRECT), off the event loop when it is busy.
 *
 * Under load the verifications are the largest single cost of a call on the
 * adapter's one thread: with sipp offering 2,000 calls/s through one
 * adapter pair, Ed25519 verify was about a quarter of all CPU samples. Node
 * can run the same OpenSSL verification on its worker pool (crypto.verify
 * with a callback), leaving the thread free to parse, fetch and answer other
 * calls meanwhile, and using the machine's other cores. A lone call gains
 * nothing from that and pays the hop to the pool and back, so a check goes
 * to the pool only while other calls are in progress in this process, and
 * only in real time (a SystemClock): a simulation on a SimClock (the memory
 * overlay) runs every check inline, so its runs stay deterministic and never
 * wait on a thread the simulated clock knows nothing of.
 *
 * Nothing about the verdict changes: the bytes verified are exactly those of
 * `verifyWithKey` (identity/signature.ts: domain prefix, context, message),
 * under the same key, with the same refusals of a malformed signature; keys
 * other than Ed25519 (certificate users) are checked inline as before.
 *
 * The two signatures of a call (the caller's INVITE, the callee's REDIRECT) are made the same way
 * (signCall): on the pool under the same policy, sharing its bound, else inline. The signature is the
 * one `UserSigner.sign` makes (Ed25519 is deterministic, RFC 8032 section 5.1.6: the same bytes), and the
 * private key never leaves the signer (UserSigner.signAsync).
 */
import { verificationOf, verifyOffThread } from '../identity/signature.ts';
import type { UserKey, UserSigner } from '../identity/user-key.ts';
import { type Clock, SystemClock } from '../util/clock.ts';

/** Calls being set up in this process (either side); a check goes to the pool when others are. */
let inProgress = 0;
/** Checks on the pool not answered yet. */
let pooled = 0;
/**
 * At most this many checks wait on the pool (Node's default pool has 4 threads). When the pool falls
 * behind (no core to spare: the machine is busy with other work), the thread checks the next ones
 * itself instead of queueing them behind the pool's backlog.
 */
const MAX_POOLED = 4;
/**
 * Checks and signatures sent to the worker pool (for the tests and the benchmark); `enabled` false keeps
 * every check and signature inline.
 */
export const offThread = { checks: 0, signatures: 0, enabled: true };

/** Count a call (either side) as in progress until `run` settles. */
export async function inCall<T>(run: () => Promise<T>): Promise<T> {
  inProgress++;
  try {
    return await run();
  } finally {
    inProgress--;
  }
}

/**
 * Whether a check made now, by a flow on `clock`, goes to the pool: real time, more calls in progress than
 * one's two sides, and room on the pool.
 */
export function poolNow(clock: Clock): boolean {
  return offThread.enabled && inProgress > 2 && pooled < MAX_POOLED && clock instanceof SystemClock;
}

/** `key.verify(context, message, sig)`, on the worker pool when `pool` (see poolNow). Never rejects. */
export async function verifyCallSignature(
  key: UserKey,
  context: string,
  message: Uint8Array,
  sig: Uint8Array,
  pool: boolean,
): Promise<boolean> {
  if (!pool || key.kind !== 'ed25519') return key.verify(context, message, sig);
  // verifyWithKey's refusals, before any work.
  const v = verificationOf(key.publicKey, context, message, sig);
  if (!v) return false;
  offThread.checks++;
  pooled++;
  try {
    return await verifyOffThread(v);
  } finally {
    pooled--;
  }
}

/**
 * `signer.sign(context, message)`, on the worker pool when `pool` (see poolNow). Rejects only where `sign`
 * would throw (a programming error: bad context).
 */
export async function signCall(
  signer: UserSigner,
  context: string,
  message: Uint8Array,
  pool: boolean,
): Promise<Uint8Array> {
  if (!pool) return signer.sign(context, message);
  offThread.signatures++;
  pooled++;
  try {
    return await signer.signAsync(context, message);
  } finally {
    pooled--;
  }
}
