/**
 * The adapter's SIP edge (seed 000 IV.3, issue requirements on error mapping
 * and CANCEL): whole adapters (SIP element, registrar, overlay node) on the
 * in-memory ring, phones simulated as wire text. What the phone receives is
 * checked: 404 unknown user, 480 callee's adapter or phone unreachable, 403
 * with a reason, 408 timeout, and CANCEL (RFC 3261 9.2) at every step of the
 * verified flow.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Adapter } from '../../src/secp2psip/adapter.ts';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import { decodeMessage, encodeMessage, type RedirectMsg } from '../../src/secp2psip/messages.ts';
import { SipElement } from '../../src/sip/element.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message.ts';
import { getHeader } from '../../src/sip/message.ts';
import { buildResponse } from '../../src/sip/response.ts';
import { serialize } from '../../src/sip/serializer.ts';
import type { Caller, Payload } from '../../src/rpc/types.ts';
import { MemoryTransport } from '../sip/helpers.ts';
import { SecTestnet } from './testnet.ts';

interface Side {
  node: AdapterNode;
  adapter: Adapter;
  transport: MemoryTransport;
  phone: { host: string; port: number };
}

let seq = 0;

function request(
  method: string,
  from: string,
  to: string,
  side: Side,
  o: { branch?: string; callId?: string; uri?: string } = {},
) {
  const n = ++seq;
  const here = side.transport.local;
  const hp = `${side.phone.host}:${side.phone.port}`;
  const uri =
    o.uri ?? (method === 'REGISTER' ? `sip:${here.host}:${here.port}` : `sip:${to}@${here.host}:${here.port}`);
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${hp};branch=${o.branch ?? `z9hG4bK-audit-${n}`};rport`,
    'Max-Forwards: 70',
    `From: <sip:${from}@${here.host}:${here.port}>;tag=f${n}`,
    `To: <sip:${to}@${here.host}:${here.port}>`,
    `Call-ID: ${o.callId ?? `audit-${n}@${side.phone.host}`}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:${from}@${hp}>`,
    ...(method === 'REGISTER' ? ['Expires: 3600'] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

/** Responses the phone got for one Call-ID. */
function answers(side: Side, callId: string): SipResponse[] {
  return side.transport.sent.flatMap((s) =>
    s.msg.kind === 'response' && getHeader(s.msg, 'Call-ID') === callId ? [s.msg] : [],
  );
}

/** Status and CSeq of each answer, retransmissions (RFC 3261 17.2.1 Timer G) counted once. */
function summary(rs: SipResponse[]): string[] {
  const out = rs.map((r) => `${r.status} ${getHeader(r, 'CSeq')}`);
  return out.filter((s, i) => s !== out[i - 1]);
}

/** Replace a node's SECP2PSIP answers (ring RPCs are left alone). */
function tap(a: AdapterNode, wrap: (answer: () => Promise<Payload>) => Promise<Payload>): void {
  const orig = (a as unknown as { onRequest(m: string, p: Payload, c: Caller): Payload }).onRequest.bind(a);
  a.endpoint.onRequest((m, p, c) => (m === 'secp2psip' ? wrap(async () => orig(m, p, c)) : orig(m, p, c)));
}

describe('adapter SIP edge: error mapping and CANCEL (in-memory ring)', () => {
  let t: SecTestnet;
  const sides: Side[] = [];
  let A: Side; // alice's phone
  let B: Side; // bob's phone
  let C: Side; // carol's adapter is closed later
  let D: Side; // dave's adapter never answers SECP2PSIP INVITEs
  let E: Side; // erin's adapter holds its answers until released

  /** Run simulated time until the phone has a final answer for the call (or the limit passes). */
  async function finalFor(side: Side, callId: string, limitMs = 20_000): Promise<SipResponse[]> {
    await t.net.runUntil(() => answers(side, callId).some((r) => r.status >= 200), limitMs);
    return answers(side, callId);
  }

  async function register(side: Side, name: string, status = 200): Promise<SipResponse | undefined> {
    const text = request('REGISTER', name, name, side);
    side.transport.inject(text, { transport: 'UDP', address: side.phone.host, port: side.phone.port });
    const callId = /Call-ID: (.*)/.exec(text)?.[1] ?? '';
    const rs = await finalFor(side, callId);
    assert.equal(rs.at(-1)?.status, status, `${name} registered: ${summary(rs)}`);
    return rs.at(-1);
  }

  function invite(from: Side, caller: string, callee: string, branch?: string, uri?: string): string {
    const text = request('INVITE', caller, callee, from, { branch, uri });
    from.transport.inject(text, { transport: 'UDP', address: from.phone.host, port: from.phone.port });
    return /Call-ID: (.*)/.exec(text)?.[1] ?? '';
  }

  function cancel(from: Side, caller: string, callee: string, branch: string, callId: string, uri?: string): void {
    const text = request('CANCEL', caller, callee, from, { branch, callId, uri });
    from.transport.inject(text, { transport: 'UDP', address: from.phone.host, port: from.phone.port });
  }

  before(async () => {
    t = await SecTestnet.create(8, { k: 3, n: 5, seed: 21 });
    for (const [i, node] of t.adapters.slice(0, 5).entries()) {
      const transport = new MemoryTransport();
      const element = new SipElement({ transport, clock: t.clock });
      const adapter = new Adapter({ node, element, clock: t.clock, auth: 'open' });
      sides.push({ node, adapter, transport, phone: { host: `10.0.1.${i + 1}`, port: 5070 } });
    }
    [A, B, C, D, E] = sides;
    await register(A, 'alice');
    await register(B, 'bob');
    await register(C, 'carol');
    await register(D, 'dave');
    await register(E, 'erin');
    // fred is registered with the bootstrap at B, but no phone of his is bound there.
    await t.settle(B.node.ensureUser('fred'));
  });
  after(() => t.close());

  it("a verified call: 100 Trying, then the 302 to bob's own phone", async () => {
    const id = invite(A, 'alice', 'bob');
    const rs = await finalFor(A, id);
    assert.deepEqual(
      rs.map((r) => r.status),
      [100, 302],
    );
    assert.match(getHeader(rs[1], 'Contact') ?? '', /sip:bob@10\.0\.1\.2:5070/);
  });

  it('an unknown user is 404', async () => {
    const rs = await finalFor(A, invite(A, 'alice', 'nobody'));
    assert.deepEqual(
      rs.map((r) => r.status),
      [100, 404],
    );
  });

  it("a user whose phone is not registered at the callee's adapter is 480", async () => {
    const rs = await finalFor(A, invite(A, 'alice', 'fred'));
    assert.equal(rs.at(-1)?.status, 480, summary(rs).join());
    assert.match(rs.at(-1)?.reason ?? '', /fred's phone is not registered/);
  });

  it('a caller not registered at this adapter is 403 with the reason', async () => {
    const rs = await finalFor(A, invite(A, 'mallory', 'bob'));
    assert.equal(rs.at(-1)?.status, 403);
    assert.match(rs.at(-1)?.reason ?? '', /mallory is not registered at this adapter/);
  });

  it("a phone registering a name bound to another user's key is 403 with the bootstrap's reason", async () => {
    const r = await register(D, 'bob', 403);
    assert.match(r?.reason ?? '', /'bob' is already registered with another key/);
    assert.equal(D.node.users.has('bob'), false);
  });

  it('a REDIRECT altered in transit is 403 with the reason, never a 302', async () => {
    tap(B.node, async (answer) => {
      const r = (await answer()) as Uint8Array;
      const d = decodeMessage(r);
      if (!d.ok || d.value.t !== 'REDIRECT') return r;
      const text = new TextDecoder().decode(d.value.sip).replace('10.0.1.2:5070', '6.6.6.6:5060');
      const evil: RedirectMsg = { ...d.value, sip: new TextEncoder().encode(text) };
      return encodeMessage(evil);
    });
    try {
      const rs = await finalFor(A, invite(A, 'alice', 'bob'));
      assert.deepEqual(
        rs.map((r) => r.status),
        [100, 403],
      );
      assert.match(rs[1].reason, /not signed by bob/);
    } finally {
      tap(B.node, (answer) => answer());
    }
  });

  it("the callee's adapter answering too late is 408", async () => {
    // Its answer comes long after the adapter's 5 s SECP2PSIP timeout. (The in-memory network delivers the
    // timeout only when that late answer arrives: test/rpc/audit-memory-network.test.ts.)
    tap(D.node, (answer) => new Promise<void>((r) => t.clock.setTimer(20_000, r)).then(answer));
    const rs = await finalFor(A, invite(A, 'alice', 'dave'), 30_000);
    assert.deepEqual(summary(rs), ['100 1 INVITE', '408 1 INVITE']);
    assert.match(rs[1].reason, /adapter of dave did not answer/);
  });

  describe('CANCEL (RFC 3261 9.2) at every step', () => {
    it('while the callee is looked up: 200 and 487 at once, and no SECP2PSIP INVITE is sent', async () => {
      const before = B.node.stats.invitesAnswered;
      const branch = `z9hG4bK-cancel-lookup-${++seq}`;
      const id = invite(A, 'alice', 'bob', branch);
      cancel(A, 'alice', 'bob', branch, id);
      await t.run(10_000);
      assert.deepEqual(summary(answers(A, id)), ['100 1 INVITE', '200 1 CANCEL', '487 1 INVITE']);
      assert.equal(B.node.stats.invitesAnswered, before, 'the flow stopped before the INVITE went out');
    });

    it("while the callee's adapter is verifying: 487, and its late REDIRECT never becomes a 302", async () => {
      let release: () => void = () => {};
      let held = 0;
      tap(E.node, async (answer) => {
        held++;
        await new Promise<void>((r) => {
          release = r;
        });
        return answer();
      });
      const branch = `z9hG4bK-cancel-exchange-${++seq}`;
      const id = invite(A, 'alice', 'erin', branch);
      await t.net.runUntil(() => held > 0, 10_000);
      assert.equal(held, 1, "the SECP2PSIP INVITE reached erin's adapter");
      cancel(A, 'alice', 'erin', branch, id);
      await t.run(10);
      release();
      await t.run(10_000);
      assert.deepEqual(summary(answers(A, id)), ['100 1 INVITE', '200 1 CANCEL', '487 1 INVITE']);
      tap(E.node, (answer) => answer());
      const again = await finalFor(A, invite(A, 'alice', 'erin'));
      assert.equal(again.at(-1)?.status, 302, 'the next call goes through');
    });

    it('after the 302: the CANCEL gets 200 and the 302 stands', async () => {
      const branch = `z9hG4bK-cancel-after-${++seq}`;
      const id = invite(A, 'alice', 'bob', branch);
      await finalFor(A, id);
      cancel(A, 'alice', 'bob', branch, id);
      await t.run(100);
      assert.deepEqual(summary(answers(A, id)), ['100 1 INVITE', '302 1 INVITE', '200 1 CANCEL']);
    });
  });

  it('the phone following the 302 back through its adapter is proxied to the verified contact; its CANCEL too', async () => {
    const first = await finalFor(A, invite(A, 'alice', 'bob'));
    const contact = /<([^>]+)>/.exec(getHeader(first.at(-1) as SipResponse, 'Contact') ?? '')?.[1] ?? '';
    assert.equal(contact, 'sip:bob@10.0.1.2:5070');
    const proxiedBefore = A.adapter.stats.proxied;
    const branch = `z9hG4bK-proxied-${++seq}`;
    const id = invite(A, 'alice', 'bob', branch, contact);
    await t.run(50);
    const toPhone = (method: string) =>
      A.transport.sent.filter(
        (s) => s.msg.kind === 'request' && s.msg.method === method && s.to.address === '10.0.1.2' && s.to.port === 5070,
      );
    const sent = toPhone('INVITE');
    assert.equal(sent.length, 1, "forwarded once to bob's phone");
    assert.equal(A.adapter.stats.proxied, proxiedBefore + 1);
    assert.ok(!answers(A, id).some((r) => r.status === 302), 'not redirected again');
    // Bob's phone rings; Alice hangs up: the CANCEL goes on to the phone (RFC 3261 16.10).
    const forwarded = sent[0].msg as SipRequest;
    A.transport.inject(new TextDecoder().decode(serialize(buildResponse(forwarded, 180, 'Ringing', { toTag: 'b1' }))), {
      transport: 'UDP',
      address: '10.0.1.2',
      port: 5070,
    });
    assert.ok(
      answers(A, id).some((r) => r.status === 180),
      'the 180 is relayed to alice',
    );
    cancel(A, 'alice', 'bob', branch, id, contact);
    await t.run(50);
    assert.equal(toPhone('CANCEL').length, 1);
    assert.ok(answers(A, id).some((r) => r.status === 200 && getHeader(r, 'CSeq') === '1 CANCEL'));
  });

  it("the callee's adapter gone (closed port) is 480", async () => {
    C.node.ring.stop();
    await C.node.endpoint.close();
    const rs = await finalFor(A, invite(A, 'alice', 'carol'), 30_000);
    assert.equal(rs.at(-1)?.status, 480, summary(rs).join());
    assert.match(rs.at(-1)?.reason ?? '', /adapter of carol/);
  });
});
