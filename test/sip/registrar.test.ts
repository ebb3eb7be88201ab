import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUri } from '../../src/sip/uri.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req } from './helpers.ts';

const BOB = (() => {
  const u = parseUri('sip:bob@EXAMPLE.com:5070;transport=udp');
  if (!u.ok) throw new Error('uri');
  return u.value;
})();

function reg(opts: {
  contacts?: string[];
  expires?: string;
  cseq?: number;
  callId?: string;
  extra?: Array<[string, string]>;
}) {
  const extra = (opts.contacts ?? []).map((value) => ({ name: 'Contact', value }));
  if (opts.expires !== undefined) extra.push({ name: 'Expires', value: opts.expires });
  for (const [name, value] of opts.extra ?? []) extra.push({ name, value });
  return req('REGISTER', { cseq: opts.cseq ?? 1, callId: opts.callId ?? 'reg-1', extra });
}

function setup(init = {}) {
  const clock = new SimClock();
  return { clock, r: new Registrar({ clock }, { minExpires: 60, maxExpires: 3600, ...init }) };
}

describe('Registrar (RFC 3261 10.3)', () => {
  it('binds several contacts to one address-of-record and lists them with their remaining expiry', () => {
    const { clock, r } = setup();
    const out = r.register(reg({ contacts: ['<sip:bob@192.0.2.5:5060>', '<sip:bob@192.0.2.6:5062>;expires=120'] }));
    assert.equal(out.status, 200);
    assert.deepEqual(
      out.headers.map((h) => h.value),
      ['<sip:bob@192.0.2.5:5060>;expires=3600', '<sip:bob@192.0.2.6:5062>;expires=120'],
    );
    clock.advance(20_000);
    const live = r.lookup(BOB);
    assert.deepEqual(
      live.map((b) => b.expiresIn),
      [3580, 100],
    );
    clock.advance(100_000);
    assert.equal(r.lookup(BOB).length, 1, 'the 120 s binding lapsed');
  });

  it('a query (no Contact) returns the current bindings without changing them', () => {
    const { r } = setup();
    r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], expires: '600' }));
    const q = r.register(reg({ cseq: 2 }));
    assert.equal(q.status, 200);
    assert.deepEqual(
      q.headers.map((h) => h.value),
      ['<sip:bob@192.0.2.5>;expires=600'],
    );
  });

  it('shortens intervals beyond max-expires and answers 423 with Min-Expires below min-expires', () => {
    const { r } = setup();
    const long = r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], expires: '99999' }));
    assert.equal(long.headers[0].value, '<sip:bob@192.0.2.5>;expires=3600');
    const brief = r.register(reg({ contacts: ['<sip:bob@192.0.2.7>;expires=30'], cseq: 2 }));
    assert.equal(brief.status, 423);
    assert.deepEqual(brief.headers, [{ name: 'Min-Expires', value: '60' }]);
    assert.equal(r.lookup(BOB).length, 1, 'a refused request changes nothing');
  });

  it('refresh with the same Call-ID and a higher CSeq extends; an out-of-order CSeq is refused', () => {
    const { clock, r } = setup();
    r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], expires: '600', cseq: 5 }));
    clock.advance(300_000);
    const refresh = r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], expires: '600', cseq: 6 }));
    assert.equal(refresh.status, 200);
    assert.equal(r.lookup(BOB)[0].expiresIn, 600);
    const stale = r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], expires: '0', cseq: 6 }));
    assert.equal(stale.status, 400);
    assert.match(stale.reason, /out-of-order CSeq/);
    assert.equal(r.lookup(BOB).length, 1);
    const other = r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], expires: '0', cseq: 1, callId: 'other' }));
    assert.equal(other.status, 200, 'another Call-ID may update regardless of CSeq');
    assert.equal(r.lookup(BOB).length, 0);
  });

  it('Contact: * with Expires: 0 removes all bindings; other forms of * are 400', () => {
    const { r } = setup();
    r.register(reg({ contacts: ['<sip:bob@192.0.2.5>', '<sip:bob@192.0.2.6>'], cseq: 1 }));
    assert.equal(r.register(reg({ contacts: ['*'], expires: '10', cseq: 2 })).status, 400);
    assert.equal(r.register(reg({ contacts: ['*'], cseq: 2 })).status, 400);
    const mixed = r.register(reg({ contacts: ['*', '<sip:bob@192.0.2.9>'], expires: '0', cseq: 2 }));
    assert.equal(mixed.status, 400);
    assert.equal(r.lookup(BOB).length, 2);
    const stale = r.register(reg({ contacts: ['*'], expires: '0', cseq: 1 }));
    assert.equal(stale.status, 400, 'same Call-ID, CSeq not higher');
    const all = r.register(reg({ contacts: ['*'], expires: '0', cseq: 3 }));
    assert.equal(all.status, 200);
    assert.deepEqual(all.headers, []);
    assert.equal(r.lookup(BOB).length, 0);
    assert.equal(r.size, 0);
  });

  it('removes a single binding with expires=0 and keeps the others', () => {
    const { r } = setup();
    r.register(reg({ contacts: ['<sip:bob@192.0.2.5>', '<sip:bob@192.0.2.6>'] }));
    const out = r.register(reg({ contacts: ['<sip:bob@192.0.2.5>;expires=0'], cseq: 2 }));
    assert.equal(out.status, 200);
    assert.deepEqual(
      out.headers.map((h) => h.value),
      ['<sip:bob@192.0.2.6>;expires=3600'],
    );
  });

  it('orders bindings by q and compares contact URIs per 19.1.4 (host case-insensitive)', () => {
    const { r } = setup();
    r.register(reg({ contacts: ['<sip:bob@192.0.2.5>;q=0.2', '<sip:bob@HOST.example>;q=0.9'] }));
    r.register(reg({ contacts: ['<sip:bob@host.EXAMPLE>;q=0.1'], cseq: 2 }));
    const live = r.lookup(BOB);
    assert.equal(live.length, 2);
    assert.equal(live[0].contact.uri.host, '192.0.2.5');
  });

  it('rejects malformed input with a reason naming the problem', () => {
    const { r } = setup();
    assert.match(r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], expires: 'soon' })).reason, /Expires/);
    assert.match(r.register(reg({ contacts: ['<sip:bob@192.0.2.5>;expires=x'] })).reason, /expires/);
    assert.match(r.register(reg({ contacts: ['<bad uri'] })).reason, /Contact/);
    const required = r.register(reg({ contacts: ['<sip:bob@192.0.2.5>'], extra: [['Require', 'gruu']] }));
    assert.equal(required.status, 420);
    const noTo = reg({ contacts: ['<sip:bob@192.0.2.5>'] });
    noTo.headers = noTo.headers.filter((h) => h.name !== 'To');
    assert.match(r.register(noTo).reason, /To/);
    const tel = reg({ contacts: ['<sip:bob@192.0.2.5>'] });
    for (const h of tel.headers) if (h.name === 'To') h.value = '<tel:+15551234>';
    assert.equal(r.register(tel).status, 404);
  });

  it('limits bindings per address-of-record', () => {
    const { r } = setup({ maxBindingsPerAor: 2 });
    assert.equal(r.register(reg({ contacts: ['<sip:a@192.0.2.1>', '<sip:b@192.0.2.1>'] })).status, 200);
    assert.equal(r.register(reg({ contacts: ['<sip:c@192.0.2.1>'], cseq: 2 })).status, 403);
    assert.equal(r.register(reg({ contacts: ['<sip:a@192.0.2.1>'], cseq: 3 })).status, 200, 'refresh still allowed');
  });

  it('tells contacts apart by RFC 3261 19.1.4: a parameter in both must match, one in only one is ignored', () => {
    const puts: string[] = [];
    const removes: string[] = [];
    const clock = new SimClock();
    const store = {
      put: (b: { key: string }) => puts.push(b.key),
      remove: (_aor: string, key: string) => removes.push(key),
      removeAor: () => {},
    };
    const r = new Registrar({ clock, store }, { minExpires: 60 });
    const two = r.register(reg({ contacts: ['<sip:bob@192.0.2.5;line=x>', '<sip:bob@192.0.2.5;line=y>'] }));
    assert.equal(two.headers.length, 2, 'two lines of one phone are two bindings');
    // The same contact without the parameter is the line=x binding updated (the first equivalent one), re-keyed.
    const updated = r.register(reg({ contacts: ['<sip:bob@192.0.2.5>;expires=900'], cseq: 2 }));
    assert.deepEqual(
      updated.headers.map((h) => h.value),
      ['<sip:bob@192.0.2.5;line=y>;expires=3600', '<sip:bob@192.0.2.5>;expires=900'],
    );
    assert.equal(removes.length, 1, 'the old key left the store');
    assert.equal(new Set(puts).size, 3);
    const gone = r.register(reg({ contacts: ['<sip:bob@192.0.2.5;line=y>'], expires: '0', cseq: 3 }));
    assert.deepEqual(
      gone.headers.map((h) => h.value),
      ['<sip:bob@192.0.2.5>;expires=900'],
    );
  });
});
