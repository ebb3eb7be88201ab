/**
 * The one UAS front door (src/sip/front-door.ts) behind each of the product's
 * SIP servers: the registrar/redirect server, the SecP2PSIP adapter (whole
 * adapters on the in-memory ring) and the WhanauSIP node and gateway (the SIP
 * side over a real, unlinked Whanau daemon). The same raw messages go to every
 * server, as wire text through its transport, on a simulated clock; each
 * conformance point of the restructuring issue is a row checked against each
 * server it applies to.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { Adapter } from '../../src/secp2psip/adapter.ts';
import { SipElement } from '../../src/sip/element.ts';
import { sipReasonOf, sipStatusOf } from '../../src/sip/error-status.ts';
import { allowList, unsupportedRequire } from '../../src/sip/front-door.ts';
import { getHeader, getHeaders, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { RedirectServer } from '../../src/sip/redirect-server.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { SimClock } from '../../src/util/clock.ts';
import { OverlayError } from '../../src/util/errors.ts';
import { WhanauSipNode } from '../../src/whanausip/sip-node.ts';
import { WhanauDaemon } from '../../src/whanausip/whanau-daemon.ts';
import { SecTestnet } from '../secp2psip/testnet.ts';
import { MemoryTransport } from './helpers.ts';

const PHONE = { transport: 'UDP' as const, address: '10.0.9.1', port: 5070 };
const HERE = '127.0.0.1:5060';

interface Server {
  name: string;
  transport: MemoryTransport;
  /** Run the server's simulated time until `done()` holds or `ms` pass. */
  run(done: () => boolean, ms: number): Promise<void>;
  /** Exactly the methods the server handles. */
  allow: string;
  /** A user this server takes REGISTERs for (undefined: it takes none). */
  registrant?: string;
  /** How a caller registered here is named (the adapter checks the caller), and who calls `registrant`. */
  caller?: string;
}

let seq = 0;

interface Msg {
  uri?: string;
  user?: string;
  from?: string;
  branch?: string;
  callId?: string;
  toTag?: string;
  maxForwards?: number;
  cseq?: number;
  contacts?: string[];
  extra?: string[];
}

/** A request as a phone writes it. */
function text(method: string, o: Msg = {}): { text: string; callId: string; branch: string } {
  const n = ++seq;
  const user = o.user ?? 'bob';
  const uri = o.uri ?? (method === 'REGISTER' ? `sip:${HERE}` : `sip:${user}@${HERE}`);
  const callId = o.callId ?? `fd-${n}@10.0.9.1`;
  const branch = o.branch ?? `z9hG4bK-fd-${n}`;
  const to = method === 'REGISTER' ? `sip:${user}@${HERE}` : uri.startsWith('sip') ? uri : `sip:${user}@${HERE}`;
  const lines = [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 10.0.9.1:5070;branch=${branch};rport`,
    ...(o.maxForwards === -1 ? [] : [`Max-Forwards: ${o.maxForwards ?? 70}`]),
    `From: <sip:${o.from ?? 'alice'}@${HERE}>;tag=f${n}`,
    `To: <${to}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
    `Call-ID: ${callId}`,
    `CSeq: ${o.cseq ?? 1} ${method}`,
    ...(o.contacts ?? [`<sip:${o.from ?? 'alice'}@10.0.9.1:5070>`]).map((c) => `Contact: ${c}`),
    ...(method === 'REGISTER' ? ['Expires: 600'] : []),
    ...(o.extra ?? []),
    'Content-Length: 0',
    '',
    '',
  ];
  return { text: lines.join('\r\n'), callId, branch };
}

function responsesTo(s: Server, callId: string): SipResponse[] {
  return s.transport.sent.flatMap((x) =>
    x.msg.kind === 'response' && getHeader(x.msg, 'Call-ID') === callId ? [x.msg] : [],
  );
}

/** Send a request and return the final response (after running the server's time until there is one). */
async function ask(s: Server, method: string, o: Msg = {}): Promise<SipResponse> {
  const m = text(method, o);
  s.transport.inject(m.text, PHONE);
  const final = () => responsesTo(s, m.callId).find((r) => r.status >= 200);
  await s.run(() => final() !== undefined, 30_000);
  const r = final();
  assert.ok(r, `${s.name}: no final answer to ${method}`);
  return r;
}

/** Runs a plain simulated clock: timers in order, promise continuations between them. */
function clockRunner(clock: SimClock): Server['run'] {
  return async (done, ms) => {
    const end = clock.now() + ms;
    const drain = () => new Promise<void>((r) => setImmediate(r));
    await drain();
    while (!done()) {
      const next = clock.nextAt();
      if (next === undefined || next > end) break;
      clock.runUntil(next);
      await drain();
    }
    if (!done()) clock.runUntil(end);
  };
}

/** The phrases of a reason, split at ': ': none may appear twice. */
function assertNoRepeatedPhrase(reason: string): void {
  const parts = reason.split(/:\s+/).map((p) => p.trim().toLowerCase());
  assert.equal(new Set(parts).size, parts.length, `reason repeats itself: ${reason}`);
}

describe('one SIP front door: conformance of every server (RFC 3261)', { timeout: 240_000 }, () => {
  const servers: Server[] = [];
  let t: SecTestnet;
  let whanau: WhanauDaemon;

  before(async () => {
    // Registrar and redirect server.
    {
      const clock = new SimClock();
      const transport = new MemoryTransport();
      const element = new SipElement({ transport, clock });
      const registrar = new Registrar({ clock }, { minExpires: 60, maxBindingsPerAor: 3 });
      new RedirectServer({ element, registrar });
      servers.push({
        name: 'registrar',
        transport,
        run: clockRunner(clock),
        allow: 'INVITE, ACK, CANCEL, OPTIONS, REGISTER',
        registrant: 'carol',
        caller: 'alice',
      });
    }
    // SecP2PSIP adapters on the in-memory ring: carol's phone registers at the first, alice calls from the second.
    {
      t = await SecTestnet.create(4, { k: 3, n: 5, seed: 31 });
      const run: Server['run'] = async (done, ms) => {
        await t.net.runUntil(done, ms);
      };
      const [atCarol, atAlice] = t.adapters.map((node) => {
        const transport = new MemoryTransport();
        const element = new SipElement({ transport, clock: t.clock });
        new Adapter({ node, element, clock: t.clock, auth: 'open' });
        return {
          name: 'adapter',
          transport,
          run,
          allow: 'INVITE, ACK, CANCEL, OPTIONS, REGISTER, MESSAGE',
          registrant: 'carol',
          caller: 'alice',
        };
      });
      servers.push(atCarol);
      const r = await ask(atAlice, 'REGISTER', { user: 'alice', from: 'alice' });
      assert.equal(r.status, 200, r.reason);
      adapterOfCaller = atAlice;
    }
    whanau = await WhanauDaemon.start({
      host: '127.0.0.1',
      port: 0,
      params: defaultParams(2, { periodMs: 3600_000 }),
      schedule: false,
    });
    for (const role of ['node', 'gateway'] as const) {
      const clock = new SimClock();
      const transport = new MemoryTransport();
      const element = new SipElement({ transport, clock });
      const registrar =
        role === 'node' ? new Registrar({ clock }, { minExpires: 10, maxBindingsPerAor: 3 }) : undefined;
      new WhanauSipNode(
        { element, clock, registrar, lookup: (hash) => whanau.lookupRecord(hash) },
        { ownHash: whanau.hash },
      );
      servers.push({
        name: `whanausip ${role}`,
        transport,
        run: clockRunner(clock),
        allow: role === 'node' ? 'INVITE, ACK, CANCEL, OPTIONS, REGISTER' : 'INVITE, ACK, CANCEL, OPTIONS',
        registrant: role === 'node' ? whanau.hash : undefined,
      });
    }
  });
  let adapterOfCaller: Server;

  after(async () => {
    t?.close();
    await whanau?.close();
  });

  /** Who an INVITE is for on a server: a user it serves (a key hash on WhanauSIP). */
  const callee = (s: Server) => s.registrant ?? whanau.hash;

  it('Max-Forwards: 0 on a request it would act on is 483; OPTIONS is still answered', async () => {
    for (const s of servers) {
      const r = await ask(s, 'INVITE', { user: callee(s), maxForwards: 0 });
      assert.equal(r.status, 483, `${s.name}: ${r.status} ${r.reason}`);
      assert.equal((await ask(s, 'OPTIONS', { maxForwards: 0 })).status, 200, s.name);
      if (s.registrant)
        assert.equal((await ask(s, 'REGISTER', { user: s.registrant, maxForwards: 0 })).status, 483, s.name);
    }
  });

  it('an unknown Require option is 420 Bad Extension with Unsupported listing only the unknown ones', async () => {
    for (const s of servers) {
      for (const method of ['INVITE', 'OPTIONS', ...(s.registrant ? ['REGISTER'] : [])]) {
        const r = await ask(s, method, { user: callee(s), extra: ['Require: foo, bar', 'Require: foo'] });
        assert.equal(r.status, 420, `${s.name} ${method}: ${r.status} ${r.reason}`);
        assert.deepEqual(getHeaders(r, 'Unsupported'), ['foo, bar'], `${s.name} ${method}`);
      }
    }
  });

  it('a Request-URI scheme other than sip/sips (tel: included) is 416', async () => {
    for (const s of servers)
      for (const uri of ['tel:+1-201-555-0123', 'TEL:+12015550123', 'mailto:bob@example.com', 'urn:service:sos']) {
        const r = await ask(s, 'INVITE', { uri });
        assert.equal(r.status, 416, `${s.name} ${uri}: ${r.status} ${r.reason}`);
      }
  });

  it('BYE and other requests inside a dialog are 481; another method is 405 with exactly the Allow it handles', async () => {
    for (const s of servers) {
      assert.equal((await ask(s, 'BYE', { user: callee(s) })).status, 481, `${s.name} BYE`);
      assert.equal((await ask(s, 'BYE', { user: callee(s), toTag: 'gone' })).status, 481, `${s.name} BYE in dialog`);
      assert.equal((await ask(s, 'INFO', { user: callee(s), toTag: 'gone' })).status, 481, `${s.name} INFO`);
      assert.equal((await ask(s, 'INVITE', { user: callee(s), toTag: 'gone' })).status, 481, `${s.name} re-INVITE`);
      const unhandled = ['SUBSCRIBE', 'FOO', ...(s.registrant ? [] : ['REGISTER'])].filter(
        (m) => !s.allow.split(', ').includes(m),
      );
      for (const method of unhandled) {
        const r = await ask(s, method, { user: callee(s) });
        assert.equal(r.status, 405, `${s.name} ${method}: ${r.status}`);
        assert.equal(getHeader(r, 'Allow'), s.allow, `${s.name} ${method}`);
      }
      const o = await ask(s, 'OPTIONS');
      assert.equal(o.status, 200, s.name);
      assert.equal(getHeader(o, 'Allow'), s.allow, s.name);
    }
  });

  it('every response the server builds carries a Server header', async () => {
    for (const s of servers) {
      for (const r of [await ask(s, 'OPTIONS'), await ask(s, 'FOO'), await ask(s, 'INVITE', { uri: 'tel:1' })])
        assert.match(getHeader(r, 'Server') ?? '', /\S/, `${s.name} ${r.status}`);
    }
  });

  it('RFC 2543 compatibility: the ACK for a final response to an INVITE with a To tag and no magic cookie stops its retransmission', async () => {
    for (const s of servers) {
      const m = text('INVITE', { user: callee(s), branch: `old-style-${seq}`, toTag: 'remote-1' });
      s.transport.inject(m.text, PHONE);
      const finals = () => responsesTo(s, m.callId).filter((r) => r.status >= 200);
      await s.run(() => finals().length > 0, 1_000);
      const final = finals()[0];
      assert.ok(final, s.name);
      const ack = [
        `ACK ${m.text.split(' ')[1]} SIP/2.0`,
        `Via: SIP/2.0/UDP 10.0.9.1:5070;branch=${m.branch};rport`,
        'Max-Forwards: 70',
        getHeaders(final, 'From').map((v) => `From: ${v}`)[0],
        `To: ${getHeader(final, 'To')}`,
        `Call-ID: ${m.callId}`,
        'CSeq: 1 ACK',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      s.transport.inject(ack, PHONE);
      const sent = finals().length;
      // Timer G would resend the final response every 0.5-4 s until Timer H (32 s) if the ACK did not match.
      await s.run(() => false, 40_000);
      assert.equal(finals().length, sent, `${s.name}: the final response is still being retransmitted`);
    }
  });

  it('two contacts differing only in a URI parameter stay two bindings, and the 302 keeps their q values', async () => {
    for (const s of servers.filter((x) => x.registrant)) {
      const user = s.registrant as string;
      const reg = await ask(s, 'REGISTER', {
        user,
        from: user,
        contacts: [`<sip:${user}@10.0.9.1:5070;line=x>;q=0.7`, `<sip:${user}@10.0.9.1:5070;line=y>;q=0.3`],
      });
      assert.equal(reg.status, 200, `${s.name}: ${reg.reason}`);
      assert.equal(getHeaders(reg, 'Contact').length, 2, `${s.name}: ${getHeaders(reg, 'Contact')}`);
      // The adapter checks the caller is one of its users: the call goes from alice's adapter through the ring.
      const from = s.name === 'adapter' ? adapterOfCaller : s;
      const r = await ask(from, 'INVITE', { user, from: s.caller ?? 'alice' });
      assert.equal(r.status, 302, `${s.name}: ${r.status} ${r.reason}`);
      const contacts = getHeaders(r, 'Contact');
      assert.equal(contacts.length, 2, `${s.name}: ${contacts}`);
      assert.match(contacts[0], /line=x>;q=0\.7/, s.name);
      assert.match(contacts[1], /line=y>;q=0\.3/, s.name);
      assert.match(getHeader(r, 'Server') ?? '', /\S/, `${s.name}: the 302 has a Server header`);
      // A contact that lacks the parameter is the same binding as one that has it (RFC 3261 19.1.4).
      const again = await ask(s, 'REGISTER', { user, from: user, contacts: [`<sip:${user}@10.0.9.1:5070>;expires=0`] });
      assert.equal(getHeaders(again, 'Contact').length, 1, `${s.name}: ${getHeaders(again, 'Contact')}`);
    }
  });

  it('a 403 does not repeat its reason phrase', async () => {
    const reasons: Array<[string, string]> = [];
    for (const s of servers.filter((x) => x.registrant)) {
      const user = s.registrant as string;
      if (s.name === 'registrar') {
        // More bindings than this registrar keeps for one address-of-record.
        const contacts = [1, 2, 3, 4].map((i) => `<sip:${user}@10.0.9.${i + 20}:5070>`);
        const r = await ask(s, 'REGISTER', { user, from: user, contacts });
        assert.equal(r.status, 403, r.reason);
        reasons.push([s.name, r.reason]);
      } else if (s.name === 'adapter') {
        // alice's name is bound to the key of alice's adapter: a phone at carol's adapter cannot take it.
        const r = await ask(s, 'REGISTER', { user: 'alice', from: 'alice' });
        assert.equal(r.status, 403, r.reason);
        reasons.push([s.name, r.reason]);
      } else {
        const r = await ask(s, 'REGISTER', { user: 'f'.repeat(40), from: 'x' });
        assert.equal(r.status, 403, r.reason);
        reasons.push([s.name, r.reason]);
      }
    }
    assert.equal(reasons.length, 3);
    for (const [, reason] of reasons) assertNoRepeatedPhrase(reason);
  });

  it('user names: every RFC 3261 user part that is safe as a key is accepted, the rest refused with a clear 4xx', async () => {
    // Registrar: any user part is an address-of-record (RFC 3261 10.3); escapes compare unescaped (19.1.4).
    const registrar = servers[0];
    for (const user of ['john.doe', '!', '~', '*', "'", '(', ')', 'j%6Fhn']) {
      const r = await ask(registrar, 'REGISTER', { user, from: 'x', contacts: [`<sip:x@10.0.9.1:5070>`] });
      assert.equal(r.status, 200, `${user}: ${r.reason}`);
      assert.equal((await ask(registrar, 'INVITE', { user })).status, 302, user);
    }
    assert.equal((await ask(registrar, 'INVITE', { user: 'john' })).status, 302, 'j%6Fhn is john');
    // Adapter: the name becomes ring keys and key file names (messages.ts NAME_RE).
    const adapter = servers[1];
    for (const user of ['john.doe', "o'neil(x)", '!~*', 'j%2Ed']) {
      const r = await ask(adapter, 'REGISTER', { user, from: user });
      assert.equal(r.status, 200, `${user}: ${r.reason}`);
    }
    for (const user of ['.hidden', 'john.1', 'a%2Fb', 'a;b', 'x'.repeat(65)]) {
      const r = await ask(adapter, 'REGISTER', { user, from: 'x' });
      assert.equal(r.status, 404, `${user}: ${r.status} ${r.reason}`);
      assert.match(r.reason, /not a usable user name \(1-64 letters/, user);
    }
    // WhanauSIP: a user is a key hash (seed 003 section 4.7); anything else is 400 with the rule.
    for (const s of servers.slice(2)) {
      const r = await ask(s, 'INVITE', { user: 'john.doe' });
      assert.equal(r.status, 400, s.name);
      assert.match(r.reason, /not a 40-hex key hash/, s.name);
    }
  });
});

describe('front door parts', () => {
  it('Allow: INVITE, ACK, CANCEL, OPTIONS first, then the other methods the server handles', () => {
    assert.equal(allowList(['REGISTER', 'INVITE']), 'INVITE, ACK, CANCEL, OPTIONS, REGISTER');
    assert.equal(allowList(['INVITE']), 'INVITE, ACK, CANCEL, OPTIONS');
    assert.equal(allowList(['MESSAGE', 'options']), 'ACK, CANCEL, OPTIONS, MESSAGE');
  });

  it('Require: the unknown option tags of every Require header, each once', () => {
    const m = text('INVITE', { extra: ['Require: 100rel, timer', 'Require: 100rel,,path'] });
    const parsed = parseMessageOk(m.text);
    assert.deepEqual(unsupportedRequire(parsed), ['100rel', 'timer', 'path']);
    assert.deepEqual(unsupportedRequire(parsed, ['timer', '100rel']), ['path']);
    assert.deepEqual(unsupportedRequire(parseMessageOk(text('INVITE').text)), []);
  });

  it('typed errors reach a phone with their SIP status and message; anything else is 500 with the standard phrase', () => {
    assert.equal(sipStatusOf(new OverlayError('USER_UNKNOWN', 'zed')), 404);
    assert.equal(sipStatusOf(new OverlayError('RPC_TIMEOUT')), 408);
    assert.equal(sipReasonOf(new OverlayError('VERIFICATION_FAILED', 'bad\r\nsig')), 'verification failed: bad sig');
    assert.equal(sipStatusOf(new Error('secret internals')), 500);
    assert.equal(sipReasonOf(new Error('secret internals')), 'Server Internal Error');
  });
});

function parseMessageOk(s: string) {
  const p = parseMessage(Buffer.from(s));
  assert.ok(p.ok && p.value.kind === 'request');
  return p.value;
}
