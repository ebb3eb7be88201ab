import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatNameAddr,
  formatVia,
  getTag,
  parseContacts,
  parseCSeq,
  parseNameAddr,
  parseParams,
  parseVia,
  splitTopLevel,
} from '../../src/sip/header-values.ts';
import type { SipMessage } from '../../src/sip/message.ts';

test('splitTopLevel respects quotes and angle brackets', () => {
  assert.deepEqual(splitTopLevel('"a, b" <sip:x@y;p=1,2>, <sip:z@w>', ','), ['"a, b" <sip:x@y;p=1,2>', '<sip:z@w>']);
  assert.deepEqual(splitTopLevel('"esc \\" , still" <sip:a@b>', ','), ['"esc \\" , still" <sip:a@b>']);
});

test('name-addr with quoted and token display names', () => {
  const a = parseNameAddr('"Alice \\"A\\" Liddell" <sip:alice@example.com;transport=tcp>;tag=88sja8x;q=0.5');
  assert.ok(a.ok);
  assert.equal(a.value.displayName, 'Alice "A" Liddell');
  assert.deepEqual(a.value.uri.params, [['transport', 'tcp']]);
  assert.equal(getTag(a.value), '88sja8x');
  assert.deepEqual(a.value.params, [
    ['tag', '88sja8x'],
    ['q', '0.5'],
  ]);
  const b = parseNameAddr('Bob Smith <sip:bob@example.com>');
  assert.ok(b.ok);
  assert.equal(b.value.displayName, 'Bob Smith');
  const back = parseNameAddr(formatNameAddr(a.value));
  assert.ok(back.ok);
  assert.deepEqual(back.value, a.value);
});

test('addr-spec: parameters after the URI belong to the header (RFC 3261 section 20.10)', () => {
  const r = parseNameAddr('sip:carol@chicago.com;tag=xyz;expires=60');
  assert.ok(r.ok);
  assert.deepEqual(r.value.uri.params, []);
  assert.deepEqual(r.value.params, [
    ['tag', 'xyz'],
    ['expires', '60'],
  ]);
});

test('refuses malformed name-addr', () => {
  for (const s of [
    '',
    '<sip:a@b',
    'Bell, Alexander <sip:a@b>',
    '"unterminated <sip:a@b>',
    '< sip:a@b >',
    '<sip:a@b>;',
    '<sip:a@b> junk',
  ]) {
    assert.equal(parseNameAddr(s).ok, false, s);
  }
});

test('params: quoted values keep quotes, empty params refused', () => {
  const p = parseParams(';+sip.instance="<urn:uuid:1;2>";reg-id=1;ob');
  assert.ok(p.ok);
  assert.deepEqual(p.value, [
    ['+sip.instance', '"<urn:uuid:1;2>"'],
    ['reg-id', '1'],
    ['ob', null],
  ]);
  assert.equal(parseParams(';a;;b').ok, false);
  assert.equal(parseParams('a').ok, false);
});

test('Via grammar with LWS, IPv6 and params', () => {
  const v = parseVia('SIP / 2.0 / UDP  first.example.com : 4000 ;ttl=16 ;maddr=224.2.0.1 ;branch=z9hG4bKa7c6a8dlze.1');
  assert.ok(v.ok);
  assert.equal(v.value.protocol, 'SIP/2.0');
  assert.equal(v.value.transport, 'UDP');
  assert.equal(v.value.host, 'first.example.com');
  assert.equal(v.value.port, 4000);
  assert.equal(
    formatVia(v.value),
    'SIP/2.0/UDP first.example.com:4000;ttl=16;maddr=224.2.0.1;branch=z9hG4bKa7c6a8dlze.1',
  );
  const six = parseVia('SIP/2.0/TCP [2001:db8::9:1]:5070;received=[2001:db8::9:255];rport');
  assert.ok(six.ok);
  assert.equal(six.value.host, '[2001:db8::9:1]');
  assert.deepEqual(six.value.params[1], ['rport', null]);
  for (const s of [
    'SIP/2.0 host',
    'SIP/2.0/UDP',
    'SIP/2.0/UDP host;ttl=300',
    'SIP/2.0/UDP ho st',
    'SIP/2.0/UDP host;branch',
  ]) {
    assert.equal(parseVia(s).ok, false, s);
  }
});

test('CSeq grammar and bound', () => {
  assert.deepEqual(parseCSeq('0009 INVITE'), { ok: true, value: { seq: 9, method: 'INVITE' } });
  assert.equal(parseCSeq('2147483648 INVITE').ok, false);
  assert.equal(parseCSeq('1INVITE').ok, false);
  assert.equal(parseCSeq('-1 INVITE').ok, false);
});

test('Contact wildcard', () => {
  const mk = (...values: string[]): SipMessage => ({
    kind: 'request',
    method: 'REGISTER',
    uri: 'sip:x',
    version: 'SIP/2.0',
    headers: values.map((value) => ({ name: 'Contact', value })),
    body: new Uint8Array(0),
  });
  assert.deepEqual(parseContacts(mk('*')), { ok: true, value: '*' });
  assert.equal(parseContacts(mk('*', '<sip:a@b>')).ok, false);
  const two = parseContacts(mk('<sip:a@b>;expires=5', 'sip:c@d'));
  assert.ok(two.ok && two.value !== '*');
  assert.equal(two.value.length, 2);
});
