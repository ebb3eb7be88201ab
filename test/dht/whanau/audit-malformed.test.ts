/**
 * Malformed requests on every Whanau interface (seed 003 section 4.3):
 * each is refused with a typed error (never another exception escaping the
 * handler), counted in `stats.malformedDropped`, and the node goes on
 * answering well-formed requests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dispatchWhanau } from '../../../src/dht/whanau/dispatch.ts';
import { CONTROL_METHODS, PEER_METHODS, PUBLIC_METHODS } from '../../../src/dht/whanau/messages.ts';
import { defaultParams } from '../../../src/dht/whanau/params.ts';
import type { Caller, Payload } from '../../../src/rpc/types.ts';
import { isOverlayError } from '../../../src/util/errors.ts';
import { makeNode, refFor, TestNet } from './harness.ts';

const JUNK: Payload[] = [
  null,
  'x',
  7,
  new Uint8Array(5),
  [],
  { key: 12, layer: 'a', token: 'x' },
  { key: 'ab'.repeat(20), layer: -1, token: new Uint8Array(2) },
  { length: -1, count: 1e12 },
  { length: 1e9, count: 1 },
  { length: 1, count: 1, question: { m: 'successors', epoch: 'now' } },
  { ref: { id: 'x', addr: 5 } },
  { key: new Uint8Array(31) },
  { record: { key: 1, value: 'v' } },
  { epoch: -5, x0: 3, t: 0 },
];

const callerOf = (ref: ReturnType<typeof refFor>): Caller => ({ key: ref.key, ref, addr: ref.addr });

describe('Whanau: malformed requests are refused, typed and counted', () => {
  const ADMIN = refFor(900);
  const net = new TestNet();
  const params = defaultParams(4);
  const nodes = [0, 1, 2, 3].map((i) => makeNode(net, i, params, { admin: [ADMIN.key] }));
  for (const a of nodes) for (const b of nodes) if (a !== b) a.addPeer(b.self);
  const [target, peer] = nodes;

  it('every method of the public, peer and control interfaces, every junk payload', async () => {
    const methods: [string, Caller][] = [
      ...PUBLIC_METHODS.map((m): [string, Caller] => [m, callerOf(refFor(901))]),
      ...PEER_METHODS.map((m): [string, Caller] => [m, callerOf(peer.self)]),
      // whanau.setup accepts an empty request and runs a SETUP; its bad epochs are checked below.
      ...CONTROL_METHODS.filter((m) => m !== 'whanau.setup').map((m): [string, Caller] => [m, callerOf(ADMIN)]),
    ];
    let badRequests = 0;
    const before = target.stats.malformedDropped;
    for (const [method, caller] of methods) {
      for (const payload of JUNK) {
        const what = `${method} ${JSON.stringify(payload, (_k, v) => (v instanceof Uint8Array ? `bytes(${v.length})` : v))}`;
        const out = await net.until(dispatchWhanau(target, method, payload, caller), 60_000).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (out === undefined) continue; // methods that take no arguments (getKey, ping, dump, ...)
        assert.ok(isOverlayError(out), `${what}: ${String(out)}`);
        assert.ok(['DHT_BAD_REQUEST', 'DHT_BAD_TOKEN'].includes(out.code), `${what}: ${out.code}`);
        if (out.code === 'DHT_BAD_REQUEST') badRequests++;
      }
    }
    assert.ok(badRequests > 50, `most junk is malformed (${badRequests})`);
    assert.equal(target.stats.malformedDropped - before, badRequests);
  });

  it('SETUP with a bad epoch is refused and counted', async () => {
    const before = target.stats.malformedDropped;
    for (const epoch of [-5, 'x', 2 ** 41, 1.5]) {
      await assert.rejects(dispatchWhanau(target, 'whanau.setup', { epoch }, callerOf(ADMIN)), (e) =>
        isOverlayError(e, 'DHT_BAD_REQUEST'),
      );
    }
    assert.equal(target.stats.malformedDropped, before + 4);
  });

  it('afterwards the node still serves: a peer walk and the public key', async () => {
    const walk = (await net.until(
      dispatchWhanau(target, 'whanau.walk', { length: 1, count: 2 }, callerOf(peer.self)),
    )) as { walks: unknown[] };
    assert.equal(walk.walks.length, 2);
    const key = (await dispatchWhanau(target, 'whanau.getKey', {}, callerOf(refFor(902)))) as { ref: { addr: string } };
    assert.equal(key.ref.addr, target.self.addr);
  });
});
