import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatUri, parseRequestUri, parseUri, sipUriEquals } from '../../src/sip/uri.ts';

test('full SIP URI: user, password, host, port, params, headers', () => {
  const r = parseUri('sip:alice:secretword@atlanta.com;transport=tcp;lr?subject=project%20x&priority=urgent');
  assert.ok(r.ok);
  assert.deepEqual(r.value, {
    scheme: 'sip',
    user: 'alice',
    password: 'secretword',
    host: 'atlanta.com',
    params: [
      ['transport', 'tcp'],
      ['lr', null],
    ],
    headers: [
      ['subject', 'project x'],
      ['priority', 'urgent'],
    ],
  });
});

test('IPv6 references, ports, escapes and case', () => {
  const a = parseUri('SIPS:Bob@[2001:DB8::10]:5061;MADDR=x');
  assert.ok(a.ok);
  assert.equal(a.value.scheme, 'sips');
  assert.equal(a.value.user, 'Bob');
  assert.equal(a.value.host, '[2001:db8::10]');
  assert.equal(a.value.port, 5061);
  assert.deepEqual(a.value.params, [['maddr', 'x']]);
  const b = parseUri('sip:%61lice%40x@example.com');
  assert.ok(b.ok);
  assert.equal(b.value.user, 'alice@x');
  assert.equal(formatUri(b.value), 'sip:alice%40x@example.com');
  const c = parseUri('sip:user;par=u%40example.net@example.com');
  assert.ok(c.ok);
  assert.equal(c.value.user, 'user;par=u@example.net');
  assert.equal(c.value.host, 'example.com');
  assert.deepEqual(c.value.params, []);
  const d = parseUri('sip:null-%00-null@example.com');
  assert.ok(d.ok);
  assert.equal(d.value.user, 'null-\u0000-null');
});

test('other schemes stay opaque', () => {
  const t = parseUri('tel:+1-201-555-0123;phone-context=x');
  assert.ok(t.ok);
  assert.equal(t.value.scheme, 'tel');
  assert.equal(t.value.opaque, '+1-201-555-0123;phone-context=x');
  assert.equal(formatUri(t.value), 'tel:+1-201-555-0123;phone-context=x');
});

test('refuses malformed URIs', () => {
  for (const s of [
    'sip:',
    'sip:@host',
    'sip:user@',
    'sip:user@host:99999',
    'sip:user@host:12a',
    'sip:us%4ger@host',
    'sip:user%4@host',
    'sip:user@ho st',
    'sip:user@[::1',
    'sip:user@host;=x',
    'sip:user@host?a',
    'nocolon',
    '1sip:x',
    'sip:user@-host',
  ]) {
    assert.equal(parseUri(s).ok, false, s);
  }
});

test('Request-URI: no spaces, no brackets, no headers', () => {
  assert.ok(parseRequestUri('sip:bob@example.com;transport=udp').ok);
  assert.equal(parseRequestUri('<sip:bob@example.com>').ok, false);
  assert.equal(parseRequestUri('sip:bob@example.com ').ok, false);
  assert.equal(parseRequestUri('sip:bob@example.com?Route=%3Csip:x%3E').ok, false);
});

test('format then parse is the identity on parsed URIs', () => {
  for (const s of [
    'sip:alice@atlanta.com',
    'sips:a:b@[::1]:5061;transport=tls;lr?h=%20v',
    'sip:%22quoted%20user%22@example.org;a=b%3Bc',
    'sip:192.0.2.1:5060',
    'sip:caf%C3%A9@example.com',
  ]) {
    const a = parseUri(s);
    assert.ok(a.ok, s);
    const b = parseUri(formatUri(a.value));
    assert.ok(b.ok, s);
    assert.deepEqual(b.value, a.value);
  }
});

test('URI comparison: the examples of RFC 3261 19.1.4, and parameters that tell contacts apart', () => {
  const same = (a: string, b: string) => {
    const x = parseUri(a);
    const y = parseUri(b);
    assert.ok(x.ok && y.ok, `${a} / ${b}`);
    return sipUriEquals(x.value, y.value) && sipUriEquals(y.value, x.value);
  };
  // "The URIs within each of the following sets are equivalent".
  for (const [a, b] of [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on'],
    [
      'sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com',
      'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com',
    ],
    [
      'sip:alice@atlanta.com?subject=project%20x&priority=urgent',
      'sip:alice@atlanta.com?priority=urgent&subject=project%20x',
    ],
  ])
    assert.ok(same(a, b), `${a} = ${b}`);
  // "The URIs within each of the following sets are not equivalent".
  for (const [a, b] of [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4'],
    // Any parameter in both must match: two lines of one phone are two contacts.
    ['sip:u@192.0.2.7:5070;line=x', 'sip:u@192.0.2.7:5070;line=y'],
    ['sip:u@192.0.2.7;maddr=239.1.1.1', 'sip:u@192.0.2.7'],
    ['sip:u@192.0.2.7;user=phone', 'sip:u@192.0.2.7'],
  ])
    assert.ok(!same(a, b), `${a} != ${b}`);
});
