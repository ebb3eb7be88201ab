/**
 * A SECP2PSIP request from a ring member to a bootstrap over RPC and its decoded answer, with a refusal
 * turned into an OverlayError: the one exchange an adapter has with the bootstrap set, whether it asks for
 * admission (ADMIT, ring-join.ts and roles.ts), registers a user or asks WHOIS (user-registration.ts).
 */
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import type { NodeRef, RpcEndpoint } from '../rpc/types.ts';
import { OverlayError } from '../util/errors.ts';
import { SECP2PSIP_METHOD } from './bootstrap-server.ts';
import { type AdmittedMsg, type BootstrapInfo, decodeMessage, encodeMessage } from './messages.ts';

/** Send one SECP2PSIP message and decode the answer; ERROR answers become OverlayErrors. */
export async function exchange(endpoint: RpcEndpoint, to: NodeRef, payload: Uint8Array, timeoutMs?: number) {
  const raw = await endpoint.request(to, SECP2PSIP_METHOD, payload, { timeoutMs });
  const d = decodeMessage(raw);
  if (!d.ok) throw new OverlayError('RPC_MALFORMED', d.error);
  // `answered`: the peer itself refused (not a transport failure on the way).
  if (d.value.t === 'ERROR') throw new OverlayError(d.value.code, d.value.reason, { answered: true });
  return d.value;
}

/** ADMIT: ask a bootstrap for this node key's ring id (the TLS handshake proves the key). */
export async function requestAdmission(endpoint: RpcEndpoint, bootstrap: BootstrapInfo): Promise<AdmittedMsg> {
  const m = await exchange(endpoint, bootstrapRef(bootstrap), encodeMessage({ t: 'ADMIT' }));
  if (m.t !== 'ADMITTED') throw new OverlayError('RPC_MALFORMED', `expected ADMITTED, got ${m.t}`);
  return m;
}

export function bootstrapRef(b: BootstrapInfo): NodeRef {
  return { id: nodeIdFromKey(b.key), addr: b.addr, key: b.key };
}
