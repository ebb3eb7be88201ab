import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { getHeader, getHeaders, type SipRequest } from '../../src/sip/message.ts';
import { errorStatus, parseMessage, parseMessageRaw, validateMessage } from '../../src/sip/parser.ts';

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'));

const INVITE = [
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds, SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKx',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.example.com>',
  'From: "Alice, A" <sip:alice@atlanta.example.com>;tag=1928301774',
  'i: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'm: <sip:alice@pc33.atlanta.example.com>',
  'l: 4',
  '',
  'v=0\r\n',
];

test('parses an ordinary INVITE with compact names and a Via list', () => {
  const r = parseMessage(crlf(INVITE));
  assert.ok(r.ok, r.ok ? '' : r.error);
  const m = r.value as SipRequest;
  assert.equal(m.kind, 'request');
  assert.equal(m.method, 'INVITE');
  assert.equal(m.uri, 'sip:bob@biloxi.example.com');
  assert.equal(getHeaders(m, 'via').length, 2);
  assert.equal(getHeader(m, 'Call-ID'), 'a84b4c76e66710@pc33.atlanta.example.com');
  assert.equal(getHeader(m, 'contact'), '<sip:alice@pc33.atlanta.example.com>');
  assert.equal(getHeader(m, 'From'), '"Alice, A" <sip:alice@atlanta.example.com>;tag=1928301774');
  assert.deepEqual([...m.body], [...Buffer.from('v=0\r\n').subarray(0, 4)]);
});

test('parses a response with an empty reason phrase', () => {
  const lines = [
    'SIP/2.0 100 ',
    'Via: SIP/2.0/UDP host;branch=z9hG4bK1',
    'From: <sip:a@b>;tag=1',
    'To: <sip:c@d>',
    'Call-ID: x',
    'CSeq: 1 INVITE',
    '',
    '',
  ];
  const r = parseMessage(crlf(lines));
  assert.ok(r.ok);
  assert.equal(r.value.kind, 'response');
  if (r.value.kind === 'response') {
    assert.equal(r.value.status, 100);
    assert.equal(r.value.reason, '');
  }
});

test('datagram Content-Length rules (RFC 3261 section 18.3)', () => {
  const base = INVITE.slice(0, 8);
  const noLen = parseMessage(crlf([...base, '', 'abcdef']));
  assert.ok(noLen.ok);
  assert.equal(Buffer.from(noLen.value.body).toString(), 'abcdef');
  const shorter = parseMessage(crlf([...base, 'Content-Length: 3', '', 'abcdef']));
  assert.ok(shorter.ok);
  assert.equal(Buffer.from(shorter.value.body).toString(), 'abc');
  const longer = parseMessage(crlf([...base, 'Content-Length: 30', '', 'abcdef']));
  assert.deepEqual(longer, { ok: false, error: 'Content-Length larger than body' });
  const bad = parseMessage(crlf([...base, 'Content-Length: 3x', '', 'abcdef']));
  assert.deepEqual(bad, { ok: false, error: 'bad Content-Length' });
  const stream = parseMessage(crlf([...base, '', 'abcdef']), { stream: true });
  assert.deepEqual(stream, { ok: false, error: 'missing Content-Length' });
});

test('Content-Length counts bytes, not characters, and bodies stay bytes', () => {
  const body = Buffer.from([0xff, 0x00, 0xc3, 0xa9, 0x0d, 0x0a]);
  const head = Buffer.from([...INVITE.slice(0, 8), `Content-Length: ${body.length}`, '', ''].join('\r\n'));
  const r = parseMessage(Buffer.concat([head, body]));
  assert.ok(r.ok);
  assert.deepEqual(Buffer.from(r.value.body), body);
});

test('header folding and UTF-8 header values', () => {
  const lines = [...INVITE.slice(0, 8), 'Subject: caf\u00e9', '  au lait', 'l: 0', '', ''];
  const r = parseMessage(Buffer.from(lines.join('\r\n'), 'utf8'));
  assert.ok(r.ok);
  assert.equal(getHeader(r.value, 'subject'), 'caf\u00e9 au lait');
});

test('missing mandatory headers are named', () => {
  for (const name of ['Call-ID', 'From', 'To', 'CSeq', 'Via']) {
    const lines = INVITE.filter((l) => !l.toLowerCase().startsWith(name.toLowerCase() + ':'));
    const filtered = name === 'Call-ID' ? lines.filter((l) => !l.startsWith('i:')) : lines;
    const r = parseMessage(crlf(filtered));
    assert.deepEqual(r, { ok: false, error: `missing ${name}` });
  }
});

test('CSeq method must match; raw parse still returns the message for a 400', () => {
  const lines = INVITE.map((l) => (l.startsWith('CSeq') ? 'CSeq: 1 ACK' : l));
  const r = parseMessage(crlf(lines));
  assert.deepEqual(r, { ok: false, error: 'CSeq method does not match' });
  const raw = parseMessageRaw(crlf(lines));
  assert.ok(raw.ok);
  assert.equal(validateMessage(raw.value).ok, false);
  assert.equal(errorStatus('CSeq method does not match'), 400);
});

test('unsupported version maps to 505', () => {
  const lines = INVITE.map((l, i) => (i === 0 ? 'INVITE sip:bob@biloxi.example.com SIP/7.0' : l));
  const r = parseMessage(crlf(lines));
  assert.deepEqual(r, { ok: false, error: 'unsupported SIP version' });
  assert.equal(errorStatus('unsupported SIP version'), 505);
});

test('garbage never throws', () => {
  for (const s of ['', '\r\n', 'INVITE', 'SIP/2.0 999 x\r\n\r\n', ':\r\n\r\n', 'A B C\r\n x\r\n\r\n']) {
    const r = parseMessage(Buffer.from(s));
    assert.equal(r.ok, false, s);
  }
});

const phone = (name: string) => {
  const r = parseMessage(readFileSync(new URL(`../fixtures/sip/phones/${name}.sip`, import.meta.url)));
  assert.ok(r.ok, `${name}: ${r.ok ? '' : r.error}`);
  return r.value;
};

test('phone messages: authentication headers and single-valued headers are never split at commas', () => {
  const zoiper = phone('zoiper-invite');
  assert.equal(getHeaders(zoiper, 'Authorization').length, 1);
  assert.match(getHeader(zoiper, 'Authorization') ?? '', /^Digest username="1001",realm=.*opaque="5e6f7a8b"$/);
  assert.equal(getHeaders(zoiper, 'Allow').length, 10);
  assert.equal(getHeaders(zoiper, 'Allow-Events').length, 4);
  const yealink = phone('yealink-register-auth');
  assert.equal(getHeaders(yealink, 'Authorization').length, 1);
  const ast = phone('asterisk-401');
  assert.equal(getHeaders(ast, 'WWW-Authenticate').length, 1);
  const linphone = phone('linphone-register-tcp');
  assert.equal(
    getHeader(linphone, 'User-Agent'),
    'Linphone-Desktop/5.2.6 (ubuntu) Linux, Qt 5.15.2 LinphoneCore/5.3.72',
  );
  assert.deepEqual(getHeaders(linphone, 'Accept'), [
    'application/sdp',
    'text/plain',
    'application/vnd.gsma.rcs-ft-http+xml',
  ]);
  const polycom = phone('polycom-invite');
  assert.equal(getHeaders(polycom, 'P-Preferred-Identity').length, 1);
  assert.equal(getHeader(phone('baresip-invite'), 'Content-Type'), 'application/sdp');
});

test('phone messages: bodies are exact SDP bytes, UTF-8 display names decode', () => {
  const m = phone('linphone-invite');
  assert.equal(Number(getHeader(m, 'Content-Length')), m.body.length);
  assert.ok(Buffer.from(m.body).toString('latin1').startsWith('v=0\r\no=bob '));
  assert.equal(getHeader(m, 'From'), '"Bob B\u00e9ranger" <sip:bob@sip.example.org>;tag=Gk2pL9sQx');
  const p = phone('polycom-invite');
  assert.ok(Buffer.from(p.body).toString().includes('a=crypto:1 AES_CM_128_HMAC_SHA1_80'));
});

test('every compact header name is expanded (RFC 3261 section 7.3.3 and extensions)', () => {
  const m = phone('compact-forms');
  const names = m.headers.map((h) => h.name);
  for (const n of [
    'Via',
    'From',
    'To',
    'Call-ID',
    'Contact',
    'Event',
    'Allow-Events',
    'Supported',
    'Session-Expires',
    'Refer-To',
    'Referred-By',
    'Accept-Contact',
    'Reject-Contact',
    'Request-Disposition',
    'Subject',
    'Content-Encoding',
    'Content-Type',
    'Identity',
    'Content-Length',
  ]) {
    assert.ok(names.includes(n), n);
  }
  assert.ok(!names.some((n) => n.length === 1), names.join());
  assert.deepEqual(getHeaders(m, 'Request-Disposition'), ['proxy', 'recurse']);
  assert.equal(getHeader(m, 'Session-Expires'), '1800;refresher=uac');
});

test('commas inside quotes and angle brackets do not split a list header', () => {
  const lines = [
    ...INVITE.slice(0, 7),
    'Contact: "Doe, John" <sip:jo,hn@a.example.com;x=1>;expires=60, <sip:j2@b.example.com>',
    'Date: Sat, 13 Nov 2010 23:29:00 GMT',
    'Subject: lunch, then coffee',
    'Warning: 399 host.example.com "a, b", 307 isi.edu "Session parameter \'foo\' not understood"',
    'l: 0',
    '',
    '',
  ];
  const r = parseMessage(crlf(lines));
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.deepEqual(getHeaders(r.value, 'Contact'), [
    '"Doe, John" <sip:jo,hn@a.example.com;x=1>;expires=60',
    '<sip:j2@b.example.com>',
  ]);
  assert.equal(getHeader(r.value, 'Date'), 'Sat, 13 Nov 2010 23:29:00 GMT');
  assert.equal(getHeader(r.value, 'Subject'), 'lunch, then coffee');
  assert.equal(getHeaders(r.value, 'Warning').length, 2);
});

test('bare CR inside a header value is refused; control octets in quoted-pairs are kept', () => {
  const lines = [...INVITE.slice(0, 8), 'X-Evil: a\rInjected: b', 'l: 0', '', ''];
  assert.deepEqual(parseMessage(crlf(lines)), { ok: false, error: 'malformed header value' });
});
