import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeader, getHeaders, type SipRequest } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { buildResponse, reasonPhrase } from '../../src/sip/response.ts';
import { serialize } from '../../src/sip/serializer.ts';

const req = (() => {
  const r = parseMessage(
    Buffer.from(
      [
        'INVITE sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2',
        'Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3',
        'Max-Forwards: 70',
        'From: <sip:alice@example.com>;tag=abc',
        'To: Bob <sip:bob@example.com>',
        'Call-ID: cid-1',
        'CSeq: 7 INVITE',
        'Timestamp: 54',
        'Subject: not copied',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    ),
  );
  assert.ok(r.ok);
  return r.value as SipRequest;
})();

test('copies Via (all, in order), From, To, Call-ID, CSeq (RFC 3261 section 8.2.6)', () => {
  const res = buildResponse(req, 486);
  assert.equal(res.reason, 'Busy Here');
  assert.deepEqual(getHeaders(res, 'Via'), [
    'SIP/2.0/UDP a.example.com;branch=z9hG4bK1',
    'SIP/2.0/UDP b.example.com;branch=z9hG4bK2',
    'SIP/2.0/UDP c.example.com;branch=z9hG4bK3',
  ]);
  assert.equal(getHeader(res, 'From'), '<sip:alice@example.com>;tag=abc');
  assert.equal(getHeader(res, 'Call-ID'), 'cid-1');
  assert.equal(getHeader(res, 'CSeq'), '7 INVITE');
  assert.equal(getHeader(res, 'Subject'), undefined);
  assert.equal(getHeader(res, 'Timestamp'), undefined);
});

test('To tag: added above 100, kept if present, stable when derived', () => {
  assert.equal(
    getHeader(buildResponse(req, 180, undefined, { toTag: 't1' }), 'To'),
    'Bob <sip:bob@example.com>;tag=t1',
  );
  assert.equal(getHeader(buildResponse(req, 100), 'To'), 'Bob <sip:bob@example.com>');
  assert.equal(getHeader(buildResponse(req, 100), 'Timestamp'), '54');
  const a = getHeader(buildResponse(req, 302), 'To');
  assert.equal(a, getHeader(buildResponse(req, 302), 'To'));
  assert.match(a ?? '', /;tag=[0-9a-f]{16}$/);
  const tagged = {
    ...req,
    headers: req.headers.map((h) => (h.name === 'To' ? { ...h, value: h.value + ';tag=x' } : h)),
  };
  assert.equal(getHeader(buildResponse(tagged, 200, 'Fine', { toTag: 'y' }), 'To'), 'Bob <sip:bob@example.com>;tag=x');
});

test('extra headers, body and reason; the response parses back', () => {
  const res = buildResponse(req, 302, undefined, {
    headers: [{ name: 'Contact', value: '<sip:bob@192.0.2.4:5060>' }],
    body: Buffer.from('hi'),
  });
  const back = parseMessage(serialize(res));
  assert.ok(back.ok, back.ok ? '' : back.error);
  assert.equal(back.value.kind, 'response');
  assert.equal(getHeader(back.value, 'Content-Length'), '2');
  assert.equal(getHeader(back.value, 'Contact'), '<sip:bob@192.0.2.4:5060>');
  assert.equal(reasonPhrase(302), 'Moved Temporarily');
  assert.equal(reasonPhrase(499), 'Bad Request');
});
