/**
 * One SECP2PSIP request from a local user to another user's adapter, and its answer: sealed to the receiver
 * when a key is given (protected mode), an answer sealed to the local user opened with its key, an ERROR
 * answer thrown as the refusal it carries (marked answered), and a failure on the way mapped to TIMEOUT or
 * CALLEE_UNREACHABLE. The presence service (presence.ts) sends its WATCHes and PRESENCE pushes with it.
 */
import { open } from '../identity/seal.ts';
import type { NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import { type LocalUser, sealFor } from './call-common.ts';
import { refuse } from './call-checks.ts';
import { decodeMessage, encodeMessage, type SecP2PSipMessage } from './messages.ts';

/** One SECP2PSIP request (sealed when `sealKey`), its answer opened with `self`'s key; ERROR answers throw. */
export async function requestAdapter(
  ctx: { endpoint: RpcEndpoint; timeoutMs: number },
  to: NodeRef,
  m: SecP2PSipMessage,
  sealKey: Uint8Array | undefined,
  self: LocalUser,
): Promise<SecP2PSipMessage> {
  const payload = sealKey ? sealFor(sealKey, m) : encodeMessage(m);
  let answer: unknown;
  try {
    answer = await ctx.endpoint.request(to, 'secp2psip', payload, { timeoutMs: ctx.timeoutMs });
  } catch (e) {
    if (isOverlayError(e, 'RPC_TIMEOUT')) refuse('TIMEOUT', 'adapter did not answer');
    refuse('CALLEE_UNREACHABLE', `adapter: ${(e as Error).message}`);
  }
  let d = decodeMessage(answer);
  if (d.ok && d.value.t === 'SEALED') {
    const o = open(self.kem, d.value.box);
    d = o.ok ? decodeMessage(o.value) : { ok: false, error: o.error };
  }
  if (!d.ok) refuse('VERIFICATION_FAILED', 'bad answer');
  if (d.value.t === 'ERROR') throw new OverlayError(d.value.code, d.value.reason, { answered: true });
  return d.value;
}
