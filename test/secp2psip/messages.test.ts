import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encode as cborEncode } from 'cborg';
import {
  callTbs,
  decodeBundle,
  decodeLocation,
  decodeMessage,
  encodeBundle,
  encodeLocation,
  encodeMessage,
  type InviteMsg,
  type LocationRecord,
  type RegisterMsg,
  registerTbs,
  type SecP2PSipMessage,
} from '../../src/secp2psip/messages.ts';
import { SeededRandom } from '../../src/util/random.ts';

const rnd = new SeededRandom(7);
const b = (n: number) => rnd.bytes(n);

const location: LocationRecord = {
  name: 'alice',
  nodeKey: b(32),
  nodeAddr: '127.0.0.1:7001',
  sipAddr: '127.0.0.1:5061',
  time: 1_700_000_000_000,
  seq: 3,
  sig: b(64),
  admission: b(120),
};

const register: RegisterMsg = {
  t: 'REGISTER',
  name: 'alice',
  ip: '127.0.0.1:5061',
  publicKey: { signKey: b(32), sealKey: b(32) },
  node: { addr: '127.0.0.1:7001', key: b(32) },
  location,
  ts: 1_700_000_000_123,
  nonce: b(16),
  sig: b(64),
};

const invite: InviteMsg = {
  t: 'INVITE',
  name: 'alice',
  to: 'bob',
  callId: 'a84b4c76e66710@pc33',
  nonce: b(16),
  ts: 1_700_000_000_456,
  sip: new TextEncoder().encode('INVITE sip:bob@127.0.0.1:5061 SIP/2.0\r\n\r\n'),
  sig: b(64),
};

const samples: SecP2PSipMessage[] = [
  register,
  { ...register, certChain: [b(300), b(400)], publicKey: { signKey: b(294), sealKey: b(32) }, sig: b(256) },
  { ...register, invite: 'hK3m_9x-QpZ2vW8aYt4LbN' },
  {
    t: 'REGISTERED',
    name: 'alice',
    registeredAt: 1,
    nodeId: 'ab'.repeat(20),
    admission: b(100),
    ring: [{ id: 'cd'.repeat(20), addr: '127.0.0.1:7000', key: b(32), admission: b(90) }],
    k: 6,
    n: 10,
    bootstraps: [{ addr: '127.0.0.1:7000', key: b(32) }],
  },
  { t: 'ADMIT' },
  { t: 'ADMIT', nodeKey: b(32) },
  {
    t: 'ADMITTED',
    nodeId: 'ef'.repeat(20),
    admission: b(100),
    ring: [],
    bootstraps: [{ addr: '127.0.0.1:7000', key: b(32) }],
    k: 3,
    n: 5,
  },
  invite,
  { ...invite, t: 'REDIRECT', name: 'bob', to: 'alice' },
  { t: 'SEALED', box: b(500) },
  { t: 'SEALED', box: b(500), hint: b(8) },
  { t: 'ERROR', code: 'USER_UNKNOWN', reason: 'no such user' },
  { t: 'WHOIS', name: 'bob' },
  { t: 'WHOIS_OK', bundle: { name: 'bob', signKey: b(32), sealKey: b(32), registeredAt: 5 } },
];

describe('secp2psip messages', () => {
  it('round-trips every message kind byte for byte', () => {
    for (const m of samples) {
      const bytes = encodeMessage(m);
      const d = decodeMessage(bytes);
      assert.ok(d.ok, `${m.t}: ${d.ok ? '' : d.error}`);
      assert.deepEqual(d.value, m);
      assert.deepEqual(encodeMessage(d.value), bytes, `${m.t} re-encodes identically`);
    }
  });

  it('round-trips location records and key bundles', () => {
    const l = decodeLocation(encodeLocation(location));
    assert.ok(l.ok);
    assert.deepEqual(l.value, location);
    const bundle = { name: 'bob', signKey: b(32), sealKey: b(32), registeredAt: 42 };
    const d = decodeBundle(encodeBundle(bundle));
    assert.ok(d.ok);
    assert.deepEqual(d.value, bundle);
  });

  it('rejects wrong field types, sizes and names without throwing', () => {
    const bad: unknown[] = [
      { ...invite, nonce: b(15) },
      { ...invite, sig: 'x' },
      { ...invite, sig: b(2000) },
      { ...invite, name: 'al.1' },
      { ...invite, ts: -1 },
      { ...invite, ts: 1.5 },
      { ...invite, sip: b(20_000) },
      { ...register, publicKey: { signKey: b(1300), sealKey: b(32) } },
      { ...register, publicKey: { signKey: b(44), sealKey: b(31) } },
      { ...register, certChain: [] },
      { ...register, invite: '' },
      { ...register, invite: 'short' },
      { ...register, invite: 'has spaces in it, not base64url' },
      { ...register, invite: 'x'.repeat(129) },
      { ...register, invite: b(20) },
      { t: 'ERROR', code: 'NOT_A_CODE', reason: '' },
      { t: 'SEALED', box: b(500), hint: b(7) },
      { t: 'ADMIT', nodeKey: b(31) },
      { t: 'NOPE' },
      [1, 2, 3],
    ];
    for (const m of bad) {
      const d = decodeMessage(cborEncode(m as object));
      assert.equal(
        d.ok,
        false,
        JSON.stringify(m, (_k, v) => (v instanceof Uint8Array ? v.length : v)),
      );
    }
  });

  it('never throws on random or truncated bytes', () => {
    const fuzz = new SeededRandom(99);
    const good = encodeMessage(register);
    for (let i = 0; i < 3000; i++) {
      let input: unknown;
      if (i % 3 === 0) input = fuzz.bytes(fuzz.int(200));
      else if (i % 3 === 1) input = good.subarray(0, fuzz.int(good.length));
      else {
        const c = Uint8Array.from(good);
        c[fuzz.int(c.length)] ^= 1 << fuzz.int(8);
        input = c;
      }
      const d = decodeMessage(input);
      assert.equal(typeof d.ok, 'boolean');
    }
    assert.equal(decodeMessage('a string').ok, false);
    assert.equal(decodeMessage(null).ok, false);
    assert.equal(decodeMessage(new Uint8Array(70_000)).ok, false);
  });

  it('binds kind, names, Call-ID, nonce, time and the SIP bytes into what is signed', () => {
    const base = callTbs(invite);
    const variants: InviteMsg[] = [
      { ...invite, name: 'mallory' },
      { ...invite, to: 'carol' },
      { ...invite, callId: 'other' },
      { ...invite, nonce: b(16) },
      { ...invite, ts: invite.ts + 1 },
      { ...invite, sip: new TextEncoder().encode('INVITE sip:carol@x SIP/2.0\r\n\r\n') },
    ];
    for (const v of variants) assert.notDeepEqual(callTbs(v), base);
    assert.notDeepEqual(callTbs({ ...invite, t: 'REDIRECT' }), base);
    assert.deepEqual(callTbs({ ...invite, sig: b(64) } as InviteMsg), base);
  });

  it('signs the enrolment token with the REGISTER, and signs a REGISTER without one as before the field existed', () => {
    const { t: _t, sig: _s, location: _l, ...body } = register;
    const plain = registerTbs(body);
    assert.deepEqual(
      plain,
      cborEncode([
        'REGISTER',
        body.name,
        body.ip,
        body.publicKey.signKey,
        body.publicKey.sealKey,
        body.node.addr,
        body.node.key,
        body.ts,
        body.nonce,
      ]),
    );
    const withToken = registerTbs({ ...body, invite: 'hK3m_9x-QpZ2vW8aYt4LbN' });
    assert.notDeepEqual(withToken, plain);
    assert.notDeepEqual(registerTbs({ ...body, invite: 'hK3m_9x-QpZ2vW8aYt4LbM' }), withToken);
  });
});
