import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RELAY_METHOD } from '../../src/rpc/relay.ts';
import type { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import type { NodeRef, Payload, RequestOptions } from '../../src/rpc/types.ts';
import type { RunningAdapter, RunningBootstrap } from '../../src/secp2psip/daemon.ts';
import type { UserAgent } from '../../src/sip/user-agent.ts';
import { OverlayError } from '../../src/util/errors.ts';
import { DaemonPair } from './daemon-pair.ts';
import { TestPhones, udpPeer } from './phones.ts';

/**
 * A relay that misbehaves (docs/design.md "Why a relay learns nothing and can change nothing"), on real sockets:
 * adapter C joins as a ring client (--behind-nat) whose only relay is the bootstrap; adapter A reaches it through a
 * circuit there (no direct connection tried). The bootstrap then alters, or replays, the bytes it forwards: the
 * call fails closed (no 302 reaches alice's phone, bob's phone sees no INVITE); once it forwards honestly again,
 * the next call goes through.
 */
describe('a relay that alters or replays what it forwards', { timeout: 120_000 }, () => {
  let pair: DaemonPair;
  let boot: RunningBootstrap;
  let A: RunningAdapter;
  let C: RunningAdapter;
  let alice: UserAgent;
  let bob: UserAgent;
  /** What the relay does to each chunk it forwards to C (default: nothing). */
  let meddle: ((b: Uint8Array) => Uint8Array) | undefined;

  const phones = new TestPhones();

  before(async () => {
    pair = await DaemonPair.start('secp2psip-relay-tamper-');
    boot = pair.boot;
    // C first: the admission then names the bootstrap alone, which becomes its only relay.
    C = await pair.adapter('c', {
      behindNat: true,
      mode: 'protected',
      // A quiet client: no upkeep of its own opens a direct link to A while a test runs.
      stabilizeMs: 60_000,
    });
    A = await pair.adapter('a');
    // Through the circuit only: no direct connection is tried, and C's network lets it dial its relay but not A
    // (on one host, nothing else would keep C from opening a link to A, which A would then use).
    (A.node.endpoint as TlsRpcEndpoint).relay.punch = false;
    const cEp = C.node.endpoint as TlsRpcEndpoint;
    const isA = (k: Uint8Array) => Buffer.from(k).equals(Buffer.from(A.node.endpoint.self.key));
    const cSend = cEp.request.bind(cEp);
    cEp.request = (to: NodeRef, method: string, payload: Payload, opts?: RequestOptions) =>
      isA(to.key) && !cEp.openLinkKeys().some(isA)
        ? Promise.reject(new OverlayError('RPC_UNREACHABLE', 'A cannot be dialled from C'))
        : cSend(to, method, payload, opts);
    const relay = boot.server.endpoint as TlsRpcEndpoint;
    const send = relay.request.bind(relay);
    relay.request = (to: NodeRef, method: string, payload: Payload, opts?: RequestOptions) => {
      const p = payload as { b?: Uint8Array };
      if (
        meddle &&
        method === RELAY_METHOD.DATA &&
        p.b &&
        Buffer.from(to.key).equals(Buffer.from(C.node.endpoint.self.key))
      )
        return send(to, method, { ...p, b: meddle(p.b) }, opts);
      return send(to, method, payload, opts);
    };
    alice = await phones.add('alice');
    bob = await phones.add('bob');
    assert.equal((await alice.register(udpPeer(A.sipAddr))).status, 200);
    assert.equal((await bob.register(udpPeer(C.sipAddr))).status, 200);
    assert.match(C.node.endpoint.self.addr, /^relay:/);
  });

  after(async () => {
    await pair?.close();
    await phones.close();
  });

  /** A circuit from A to C, opened honestly (or the one open already, used once more). */
  async function freshCircuit(): Promise<void> {
    await A.node.endpoint.request({ ...C.node.endpoint.self }, 'chord.ping', {});
  }

  /** Alice calls bob; resolves with the SIP status alice's phone ends with (200 when the call was set up). */
  async function callStatus(): Promise<number> {
    try {
      const call = await alice.invite(`sip:bob@${A.sipAddr}`, udpPeer(A.sipAddr));
      await alice.bye(call);
      return 200;
    } catch (e) {
      // The phone's error names the final status it got ("480 ...").
      return Number(/\b([3-6]\d\d)\b/.exec((e as Error).message)?.[1] ?? 0);
    }
  }

  it('altering one forwarded record fails the call closed; honest forwarding afterwards lets it through', async () => {
    await freshCircuit();
    const invitesBefore = bob.incoming.length;
    let altered = 0;
    meddle = (b) => {
      altered++;
      const x = new Uint8Array(b);
      x[x.length - 1] ^= 0x40;
      return x;
    };
    const status = await callStatus();
    assert.ok(altered > 0, 'the call crossed the relay');
    assert.ok(status >= 400, `the call failed (${status})`);
    assert.equal(bob.incoming.length, invitesBefore, "nothing reached bob's phone");
    assert.equal(A.adapter.stats.redirects, 0, 'no 302 was handed to alice');
    meddle = undefined;
    assert.equal(await callStatus(), 200);
    assert.equal(bob.incoming.length, invitesBefore + 1);
  });

  it('replaying an earlier record in place of a later one fails the call closed', async () => {
    const seen: Uint8Array[] = [];
    meddle = (b) => {
      seen.push(b);
      return b;
    };
    await freshCircuit();
    // The last record the relay forwarded carried a whole request (the ping): it is played again instead of the next.
    const old = seen.at(-1);
    assert.ok(old, 'the relay forwarded records');
    const [invitesBefore, redirectsBefore] = [bob.incoming.length, A.adapter.stats.redirects];
    let replayed = 0;
    meddle = () => {
      replayed++;
      return old;
    };
    const status = await callStatus();
    assert.ok(replayed > 0, 'the call crossed the relay');
    assert.ok(status >= 400, `the call failed (${status})`);
    assert.equal(bob.incoming.length, invitesBefore, "nothing reached bob's phone");
    assert.equal(A.adapter.stats.redirects, redirectsBefore, 'no 302 was handed to alice');
    meddle = undefined;
    assert.equal(await callStatus(), 200);
  });
});
