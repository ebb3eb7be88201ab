import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DigestAuthenticator,
  digestAuthorization,
  digestHash,
  digestResponse,
  parseDigestParams,
} from '../../src/sip/digest.ts';
import type { SipRequest } from '../../src/sip/message.ts';
import { PhoneCredentials } from '../../src/sip/phone-credentials.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req } from './helpers.ts';

/** The auth-params of a value that must parse. */
function params(value: string): Map<string, string> | undefined {
  const r = parseDigestParams(value);
  assert.ok(r.ok, `${value}: ${r.ok ? '' : r.error}`);
  return r.value;
}

describe('digest computation: RFC example vectors', () => {
  it('RFC 2617 section 3.5 (MD5, qop=auth)', () => {
    const ha1 = digestHash('MD5', 'Mufasa:testrealm@host.com:Circle Of Life');
    const r = digestResponse('MD5', ha1, {
      method: 'GET',
      uri: '/dir/index.html',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      nc: '00000001',
      cnonce: '0a4f113b',
      qop: 'auth',
    });
    assert.equal(r, '6629fae49393a05397450978507c4ef1');
  });

  it('RFC 7616 section 3.9.1 (SHA-256 and MD5, the algorithms RFC 8760 brings to SIP)', () => {
    const p = {
      method: 'GET',
      uri: '/dir/index.html',
      nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
      nc: '00000001',
      cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
      qop: 'auth',
    };
    const a1 = 'Mufasa:http-auth@example.org:Circle of Life';
    assert.equal(
      digestResponse('SHA-256', digestHash('SHA-256', a1), p),
      '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    );
    assert.equal(digestResponse('MD5', digestHash('MD5', a1), p), '8ca523f5e9506fed4657c9700eebdbec');
  });

  it('parses quoted and token auth-params, refuses duplicates and non-digest schemes', () => {
    const p = params('Digest username="a,b", realm="r", nc=00000001, qop=auth');
    assert.equal(p?.get('username'), 'a,b');
    assert.equal(p?.get('nc'), '00000001');
    assert.deepEqual(parseDigestParams('Basic YWxhZGRpbg=='), { ok: false, error: 'not a Digest value' });
    assert.deepEqual(parseDigestParams('Digest realm="a", realm="b"'), {
      ok: false,
      error: 'auth-param realm given twice',
    });
    assert.deepEqual(parseDigestParams('Digest realm="open'), {
      ok: false,
      error: 'auth-param realm: bad quoted string',
    });
  });
});

function setup() {
  const clock = new SimClock(1_000_000);
  const creds = PhoneCredentials.inMemory({ alice: 'alice-secret', bob: 'bob-secret' }, 'test-realm');
  const auth = new DigestAuthenticator({ clock, credentials: creds }, { realm: 'test-realm', nonceLifetimeMs: 60_000 });
  return { clock, auth };
}

function answer(
  auth: DigestAuthenticator,
  r: SipRequest,
  o: { user?: string; password?: string; nc?: number; proxy?: boolean; alg?: number; challenge?: string } = {},
): SipRequest {
  const proxy = o.proxy ?? false;
  const challenge = o.challenge ?? auth.challenge(proxy)[o.alg ?? 0].value;
  const value = digestAuthorization(challenge, {
    user: o.user ?? 'alice',
    password: o.password ?? 'alice-secret',
    method: r.method,
    uri: r.uri,
    nc: o.nc,
  });
  assert.ok(value);
  return { ...r, headers: [...r.headers, { name: proxy ? 'Proxy-Authorization' : 'Authorization', value }] };
}

describe('DigestAuthenticator', () => {
  it('offers SHA-256 first, then MD5, each with qop=auth', () => {
    const { auth } = setup();
    const c = auth.challenge(false);
    assert.deepEqual(
      c.map((h) => [h.name, params(h.value)?.get('algorithm')]),
      [
        ['WWW-Authenticate', 'SHA-256'],
        ['WWW-Authenticate', 'MD5'],
      ],
    );
    assert.equal(params(c[0].value)?.get('qop'), 'auth');
    assert.equal(auth.challenge(true)[0].name, 'Proxy-Authenticate');
  });

  it('accepts the right password with either algorithm, and names the authenticated user', () => {
    const { auth } = setup();
    assert.deepEqual(auth.check(answer(auth, req('REGISTER'), { alg: 0 }), false), { ok: true, user: 'alice' });
    assert.deepEqual(auth.check(answer(auth, req('REGISTER'), { alg: 1 }), false), { ok: true, user: 'alice' });
    const inv = answer(auth, req('INVITE'), { proxy: true, user: 'bob', password: 'bob-secret' });
    assert.deepEqual(auth.check(inv, true), { ok: true, user: 'bob' });
    // Proxy-Authorization does not answer a 401, nor Authorization a 407.
    assert.deepEqual(auth.check(inv, false), { ok: false, why: 'missing' });
  });

  it('refuses a wrong password, an unknown user, missing credentials and a request without qop', () => {
    const { auth } = setup();
    assert.deepEqual(auth.check(req('REGISTER'), false), { ok: false, why: 'missing' });
    const wrong = answer(auth, req('REGISTER'), { password: 'guess' });
    assert.deepEqual(auth.check(wrong, false), { ok: false, why: 'wrong-response' });
    const stranger = answer(auth, req('REGISTER'), { user: 'mallory', password: 'x' });
    assert.deepEqual(auth.check(stranger, false), { ok: false, why: 'unknown-user' });
    const noQop = answer(auth, req('REGISTER'));
    const h = noQop.headers.at(-1) as { value: string };
    h.value = h.value.replace(', qop=auth', '');
    assert.deepEqual(auth.check(noQop, false), { ok: false, why: 'malformed' });
  });

  it('credentials for one method do not serve another (the method is in the digest)', () => {
    const { auth } = setup();
    const reg = answer(auth, req('REGISTER'));
    const asInvite: SipRequest = { ...reg, method: 'INVITE' };
    assert.deepEqual(auth.check(asInvite, false), { ok: false, why: 'wrong-response' });
  });

  it('refuses a replay: the same nonce count twice, or a lower one; a higher one passes', () => {
    const { auth } = setup();
    const challenge = auth.challenge(false)[0].value;
    const first = answer(auth, req('REGISTER'), { challenge, nc: 1 });
    assert.equal(auth.check(first, false).ok, true);
    assert.deepEqual(auth.check(first, false), { ok: false, why: 'replay' });
    const third = answer(auth, req('REGISTER'), { challenge, nc: 3 });
    assert.equal(auth.check(third, false).ok, true);
    const second = answer(auth, req('REGISTER'), { challenge, nc: 2 });
    assert.deepEqual(auth.check(second, false), { ok: false, why: 'replay' });
  });

  it('marks an expired nonce stale, and refuses a nonce it did not issue', () => {
    const { auth, clock } = setup();
    const challenge = auth.challenge(false)[0].value;
    clock.advance(60_001);
    const late = answer(auth, req('REGISTER'), { challenge });
    assert.deepEqual(auth.check(late, false), { ok: false, why: 'stale' });
    const other = new DigestAuthenticator(
      { clock, credentials: PhoneCredentials.inMemory({ alice: 'alice-secret' }, 'test-realm') },
      { realm: 'test-realm' },
    );
    const forged = answer(auth, req('REGISTER'), { challenge: other.challenge(false)[0].value });
    assert.deepEqual(auth.check(forged, false), { ok: false, why: 'forged-nonce' });
  });

  it('offers and accepts only the configured algorithms', () => {
    const clock = new SimClock(1_000_000);
    const credentials = PhoneCredentials.inMemory({ alice: 'alice-secret' }, 'r');
    const auth = new DigestAuthenticator({ clock, credentials }, { realm: 'r', algorithms: ['MD5'] });
    assert.deepEqual(
      auth.challenge(false).map((h) => params(h.value)?.get('algorithm')),
      ['MD5'],
    );
    const sha = new DigestAuthenticator({ clock, credentials }, { realm: 'r' }).challenge(false)[0].value;
    const viaSha = answer(auth, req('REGISTER'), {
      challenge: sha.replace(/nonce="[^"]+"/, `nonce="${auth.newNonce()}"`),
    });
    assert.deepEqual(auth.check(viaSha, false), { ok: false, why: 'malformed' });
    assert.equal(auth.check(answer(auth, req('REGISTER')), false).ok, true);
  });

  it('a nonce pushed out of a full count table is never accepted again', () => {
    const clock = new SimClock(1_000_000);
    const credentials = PhoneCredentials.inMemory({ alice: 'alice-secret' }, 'r');
    const auth = new DigestAuthenticator({ clock, credentials }, { realm: 'r', maxTrackedNonces: 2 });
    const c1 = auth.challenge(false)[0].value;
    const used = answer(auth, req('REGISTER'), { challenge: c1 });
    assert.equal(auth.check(used, false).ok, true);
    clock.advance(1);
    for (let i = 0; i < 2; i++) assert.equal(auth.check(answer(auth, req('REGISTER')), false).ok, true);
    assert.deepEqual(auth.check(used, false), { ok: false, why: 'stale' });
  });
});
