/**
 * One SECP2PSIP request from a local user to another user's adapter, and its answer: sealed to the receiver
 * when a key is given (protected mode), an answer sealed to the local user opened with its key, an ERROR
 * answer thrown as the refusal it carries (marked answered), and a failure on the way mapped to TIMEOUT or
 * CALLEE_UNREACHABLE. The caller's INVITE (caller.ts), a MESSAGE (messaging.ts) and the presence service's
 * WATCHes and PRESENCE pushes (presence.ts) all go through it; what the answer must be is each one's check.
 */
import { open } from '../identity/seal.ts';
import type { NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import { type LocalUser, sealFor } from './call-common.ts';
import { refuse } from './call-checks.ts';
import { decodeMessage, encodeMessage, type SecP2PSipMessage } from './messages.ts';

export interface AdapterRequestOptions {
  /**
   * The user whose adapter is asked: named in every refusal (`adapter of <peer> did not answer`,
   * `<peer>'s adapter: <reason>`), as the phone's reason phrase shows it. None: `adapter` alone.
   */
  peer?: string;
  /** Told when the (sealed) request leaves, and when the answer's bytes are back, before they are opened. */
  sent?: () => void;
  answered?: () => void;
}

/** One SECP2PSIP request (sealed when `sealKey`), its answer opened with `self`'s key; ERROR answers throw. */
export async function requestAdapter(
  ctx: { endpoint: RpcEndpoint; timeoutMs: number },
  to: NodeRef,
  m: SecP2PSipMessage,
  sealKey: Uint8Array | undefined,
  self: LocalUser,
  opts: AdapterRequestOptions = {},
): Promise<SecP2PSipMessage> {
  const { peer } = opts;
  const payload = sealKey ? sealFor(sealKey, m) : encodeMessage(m);
  let answer: unknown;
  opts.sent?.();
  try {
    answer = await ctx.endpoint.request(to, 'secp2psip', payload, { timeoutMs: ctx.timeoutMs });
    opts.answered?.();
  } catch (e) {
    const adapter = peer === undefined ? 'adapter' : `adapter of ${peer}`;
    if (isOverlayError(e, 'RPC_TIMEOUT')) refuse('TIMEOUT', `${adapter} did not answer`);
    refuse('CALLEE_UNREACHABLE', `${adapter}: ${(e as Error).message}`);
  }
  let d = decodeMessage(answer);
  if (d.ok && d.value.t === 'SEALED') {
    const o = open(self.kem, d.value.box);
    d = o.ok ? decodeMessage(o.value) : { ok: false, error: o.error };
  }
  if (!d.ok) refuse('VERIFICATION_FAILED', peer === undefined ? 'bad answer' : `bad answer from ${peer}'s adapter`);
  // `answered`: the adapter itself refused (not a failure on the way).
  if (d.value.t === 'ERROR')
    throw new OverlayError(d.value.code, peer === undefined ? d.value.reason : `${peer}'s adapter: ${d.value.reason}`, {
      answered: true,
    });
  return d.value;
}
