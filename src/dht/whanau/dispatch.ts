import type { Caller, Payload, RequestHandler } from '../../rpc/types.ts';
import { OverlayError, type Result } from '../../util/errors.ts';
import { accessOf, decodeKV, decodeNodeRef, encodeNodeRef, Requests } from './messages.ts';
import { keyHex, type WhanauNode } from './node.ts';
import { answerQuestion, askAlongWalks, encodeAnsweredWalks } from './walk-question.ts';

/**
 * The three interfaces of a Whanau node (seed 003 sections 4.2-4.3):
 * WhanauRefPublic (anyone), WhanauRefPeer (only keys added as social peers:
 * random walks, so walks never follow a link only one side made) and
 * WhanauRefControl (only configured admin keys). Access is decided by the key
 * the caller proved in the TLS handshake (`Caller.key`), never by anything in
 * the payload. Handlers throw OverlayError, which the RpcEndpoint answers as a
 * refusal; nothing from the network escapes as any other exception.
 */

function need<T>(node: WhanauNode, r: Result<T>): T {
  if (r.ok) return r.value;
  node.stats.malformedDropped++;
  throw new OverlayError('DHT_BAD_REQUEST', r.error);
}

function spend(node: WhanauNode, token: Uint8Array): void {
  if (!node.tokens.redeem(token)) {
    node.stats.refused++;
    throw new OverlayError('DHT_BAD_TOKEN');
  }
}

/** WhanauRefPublic. */
export async function handlePublic(node: WhanauNode, method: string, payload: Payload): Promise<Payload> {
  const p = node.params;
  switch (method) {
    case 'whanau.getKey':
      return { ref: encodeNodeRef(node.self) };
    case 'whanau.getId': {
      const r = need(node, Requests.getId(payload, p.layers));
      spend(node, r.token);
      return answerQuestion(node, { m: 'getId', epoch: r.epoch, layer: r.layer });
    }
    case 'whanau.sampleRecord':
      spend(node, need(node, Requests.sampleRecord(payload)).token);
      return answerQuestion(node, { m: 'sampleRecord' });
    case 'whanau.successors': {
      const r = need(node, Requests.successors(payload));
      spend(node, r.token);
      return answerQuestion(node, { m: 'successors', epoch: r.epoch, x0: r.x0, t: r.t });
    }
    case 'whanau.query': {
      // QUERY(v, i, key): the value if (key, value) is in succ(v, i).
      const r = need(node, Requests.query(payload, p.layers));
      return { value: node.published?.succ[r.layer]?.get(r.key) ?? null };
    }
    case 'whanau.try': {
      // TRY(v, key) only at the end of a random walk: it costs v up to tryLimit QUERYs.
      const r = need(node, Requests.try(payload));
      spend(node, r.token);
      const out = await node.tryLocal(r.key);
      return { value: out.value, messages: out.messages };
    }
  }
  throw new OverlayError('DHT_BAD_REQUEST', `unknown method ${method}`);
}

/** WhanauRefPeer. */
export async function handlePeer(node: WhanauNode, method: string, payload: Payload, caller: Caller): Promise<Payload> {
  node.peerCalled(caller.key);
  switch (method) {
    case 'whanau.ping':
      return { ok: true };
    case 'whanau.walk': {
      const r = need(node, Requests.walk(payload, node.params.w));
      // Passed through without the refill (random-walk-cache.ts): a walk costs one request per hop.
      const ends = await node.walks.take(r.count, r.length, 0);
      return { walks: ends.map((e) => ({ ref: encodeNodeRef(e.ref), token: e.token })) };
    }
    case 'whanau.askWalk': {
      // A SETUP walk carrying its question (walk-question.ts): one step further, or answered here.
      const r = need(node, Requests.askWalk(payload, node.params.w, node.params.layers));
      return encodeAnsweredWalks(await askAlongWalks(node, r.count, r.length, r.question));
    }
  }
  throw new OverlayError('DHT_BAD_REQUEST', `unknown method ${method}`);
}

/** WhanauRefControl. */
export async function handleControl(node: WhanauNode, method: string, payload: Payload): Promise<Payload> {
  const o = (typeof payload === 'object' && payload !== null ? payload : {}) as Record<string, unknown>;
  switch (method) {
    case 'whanau.addPeer': {
      node.addPeer(need(node, decodeNodeRef(o.ref)));
      return { peers: node.peerList().length };
    }
    case 'whanau.removePeer':
      return { removed: node.removePeer(need(node, Requests.peerKey(payload)).key) };
    case 'whanau.publish':
      node.publish(need(node, decodeKV(o.record)));
      return { ok: true };
    case 'whanau.setup':
      return node.setup(need(node, Requests.setup(payload)).epoch);
    case 'whanau.lookup': {
      const r = await node.lookup(need(node, Requests.key(payload)).key);
      return { value: r.value, messages: r.messages, tries: r.tries, found: r.value !== null };
    }
    case 'whanau.dump':
      return node.dump() as Payload;
  }
  throw new OverlayError('DHT_BAD_REQUEST', `unknown method ${method}`);
}

/** Route one request by the caller's pinned key; refuses unknown methods and callers without the right. */
export async function dispatchWhanau(
  node: WhanauNode,
  method: string,
  payload: Payload,
  caller: Caller,
): Promise<Payload> {
  const access = accessOf(method);
  if (access === undefined) {
    node.stats.refused++;
    throw new OverlayError('DHT_BAD_REQUEST', `unknown method ${String(method).slice(0, 64)}`);
  }
  if (access === 'peer' && !node.isPeerKey(caller.key)) {
    node.stats.refused++;
    throw new OverlayError('DHT_ACCESS_DENIED', `${method} is for social peers only`);
  }
  if (access === 'control' && !node.isAdminKey(caller.key)) {
    node.stats.refused++;
    throw new OverlayError('DHT_ACCESS_DENIED', `${method} is for administrators only`);
  }
  if (access === 'public') return handlePublic(node, method, payload);
  if (access === 'peer') return handlePeer(node, method, payload, caller);
  return handleControl(node, method, payload);
}

/** The RequestHandler to install on an RpcEndpoint; also lets the node call itself without the network. */
export function whanauHandler(node: WhanauNode): RequestHandler {
  const selfCaller: Caller = { key: node.self.key, ref: node.self, addr: node.self.addr };
  node.localHandler = (method, payload) => dispatchWhanau(node, method, structuredClone(payload), selfCaller);
  return (method, payload, caller) => dispatchWhanau(node, method, payload, caller);
}

export { keyHex };
