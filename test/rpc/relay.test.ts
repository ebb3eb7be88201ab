import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { formatRelayAddr, parseRelayAddr, RELAY_METHOD } from '../../src/rpc/relay.ts';
import type { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import type { NodeRef, Payload } from '../../src/rpc/types.ts';
import { listen, makeNode, until } from './tls-helpers.ts';

/**
 * Circuit relays (rpc/relay.ts) on real TLS endpoints on loopback: C stands
 * for a node behind a NAT (it only dials out, to its relay R); A reaches C
 * through R, TLS running end to end over the circuit.
 */
describe('relay circuits', () => {
  const open: TlsRpcEndpoint[] = [];
  after(async () => {
    for (const e of open) await e.close();
  });

  async function world() {
    const r = await listen();
    const c = await listen(undefined, { relay: { serving: false } });
    const a = await listen();
    open.push(r, c, a);
    assert.equal(await c.relay.registerWith(r.self), true);
    // C is known to others by its relays only.
    c.self.addr = formatRelayAddr([r.self]);
    const cRef: NodeRef = { ...c.self };
    const seen: { from: string; payload: Payload }[] = [];
    c.onRequest((m, p, caller) => {
      seen.push({ from: Buffer.from(caller.key).toString('hex'), payload: p });
      return { echo: p, method: m };
    });
    a.onRequest(() => ({ back: true }));
    return { r, c, a, cRef, seen };
  }

  it('parses what it formats, and refuses bad relay addresses', async () => {
    const n = await makeNode();
    const addr = formatRelayAddr([{ id: '', addr: '192.0.2.1:7000', key: n.key }]);
    const p = parseRelayAddr(addr);
    assert.ok(p.ok);
    assert.deepEqual([p.value[0].addr, Buffer.from(p.value[0].key)], ['192.0.2.1:7000', Buffer.from(n.key)]);
    assert.equal(parseRelayAddr('relay:192.0.2.1:7000~AAAA').ok, false);
    assert.equal(parseRelayAddr('192.0.2.1:7000').ok, false);
  });

  it('carries requests both ways end to end; the caller key is the one TLS proved, the relay sees ciphertext', async () => {
    const { r, c, a, cRef, seen } = await world();
    const relayed: Uint8Array[] = [];
    const send = r.request.bind(r);
    r.request = (to, method, payload, opts) => {
      if (method === RELAY_METHOD.DATA) relayed.push((payload as { b: Uint8Array }).b);
      return send(to, method, payload, opts);
    };
    const got = (await a.request(cRef, 'hello', { text: 'secret-marker-42' })) as { echo: { text: string } };
    assert.equal(got.echo.text, 'secret-marker-42');
    assert.equal(seen[0].from, Buffer.from(a.self.key).toString('hex'));
    // C answers back to A over the same circuit (A is reachable anyway, but the link is reused).
    assert.deepEqual(await c.request(a.self, 'x', {}), { back: true });
    assert.ok(r.relay.stats.bytesRelayed > 0 && r.relay.stats.circuitsOpened === 1);
    const all = Buffer.concat(relayed.map((b) => Buffer.from(b))).toString('latin1');
    assert.ok(relayed.length > 2);
    assert.ok(!all.includes('secret-marker-42'), 'the relay never sees the plaintext');
  });

  it('a relay that alters a forwarded record breaks the circuit: the request fails, nothing altered is served', async () => {
    const { r, a, cRef, seen } = await world();
    assert.deepEqual(((await a.request(cRef, 'first', { n: 1 })) as { echo: unknown }).echo, { n: 1 });
    const send = r.request.bind(r);
    r.request = (to, method, payload, opts) => {
      if (method === RELAY_METHOD.DATA) {
        const b = new Uint8Array((payload as { b: Uint8Array }).b);
        b[b.length - 3] ^= 0x01;
        return send(to, method, { ...(payload as object), b }, opts);
      }
      return send(to, method, payload, opts);
    };
    await assert.rejects(a.request(cRef, 'second', { n: 2 }, { timeoutMs: 3000 }));
    assert.equal(seen.length, 1, 'the altered request never reached the handler');
  });

  it('a relay that replays an earlier record in place of a later one breaks the circuit', async () => {
    const { r, a, cRef, seen } = await world();
    let kept: Uint8Array | undefined;
    const send = r.request.bind(r);
    r.request = (to, method, payload, opts) => {
      if (method === RELAY_METHOD.DATA && bytesTo(to, cRef)) {
        const p = payload as { b: Uint8Array };
        if (kept === undefined && seen.length === 0 && p.b.length > 40) kept = p.b;
        else if (kept !== undefined && seen.length === 1) return send(to, method, { ...p, b: kept }, opts);
      }
      return send(to, method, payload, opts);
    };
    await a.request(cRef, 'first', { n: 1 });
    assert.ok(kept !== undefined);
    await assert.rejects(a.request(cRef, 'second', { n: 2 }, { timeoutMs: 3000 }));
    assert.equal(seen.length, 1, 'the replayed request was not served twice');
  });

  it("forgets the circuits of a caller that went away, so they do not hold the client's slots", async () => {
    const { r, a, cRef } = await world();
    await a.request(cRef, 'x', {});
    assert.equal(r.relay.circuitCount, 1);
    await a.close();
    await until(() => r.relay.circuitCount === 0, 'circuit dropped');
  });

  it('refuses clients past its cap, and circuits to unknown clients, counting both', async () => {
    const r = await listen(undefined, { relay: { limits: { maxClients: 1 } } });
    const c1 = await listen();
    const c2 = await listen();
    open.push(r, c1, c2);
    assert.equal(await c1.relay.registerWith(r.self), true);
    assert.equal(await c2.relay.registerWith(r.self), false);
    assert.equal(r.relay.stats.registrationsRefused, 1);
    const ghost = { ...c2.self, addr: formatRelayAddr([r.self]) };
    await assert.rejects(c1.request(ghost, 'x', {}, { timeoutMs: 2000 }), /no relay opened a circuit/);
    assert.equal(r.relay.stats.circuitsRefused, 1);
  });
});

function bytesTo(to: NodeRef, ref: NodeRef): boolean {
  return Buffer.from(to.key).equals(Buffer.from(ref.key));
}
