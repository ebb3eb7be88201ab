import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fastReject, OVERLOAD_TAG } from '../../src/sip/fast-reject.ts';
import { getHeader, getHeaders } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';

const INVITE = [
  'INVITE sip:bob@example.com SIP/2.0',
  'Via: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bK-f1;rport',
  'Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-f0',
  'Max-Forwards: 70',
  'From: <sip:alice@example.com>;tag=a1',
  'To: <sip:bob@example.com>',
  'Call-ID: call-f1',
  'CSeq: 7 INVITE',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\n',
].join('\r\n');

describe('503 written from the request bytes (overload)', () => {
  it('is a valid response with the copied headers, received/rport on the top Via and Retry-After', () => {
    const out = fastReject(Buffer.from(INVITE, 'latin1'), '192.0.2.7', 40000, 2);
    assert.ok(out);
    const r = parseMessage(out);
    assert.ok(r.ok, r.ok ? '' : r.error);
    const m = r.value;
    assert.equal(m.kind, 'response');
    assert.equal(m.kind === 'response' && m.status, 503);
    const vias = getHeaders(m, 'Via');
    assert.equal(vias.length, 2);
    assert.match(vias[0], /received=192\.0\.2\.7/);
    assert.match(vias[0], /rport=40000/);
    assert.match(vias[0], /branch=z9hG4bK-f1/);
    assert.equal(vias[1], 'SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-f0');
    assert.equal(getHeader(m, 'From'), '<sip:alice@example.com>;tag=a1');
    assert.equal(getHeader(m, 'To'), `<sip:bob@example.com>;tag=${OVERLOAD_TAG}`);
    assert.equal(getHeader(m, 'Call-ID'), 'call-f1');
    assert.equal(getHeader(m, 'CSeq'), '7 INVITE');
    assert.equal(getHeader(m, 'Retry-After'), '2');
    assert.equal(getHeader(m, 'Content-Type'), undefined, 'nothing else is copied');
  });

  it('keeps a To tag the request already has, and understands compact names', () => {
    const req = INVITE.replace('To: <sip:bob@example.com>', 't: <sip:bob@example.com>;tag=b2').replace(
      'Call-ID: call-f1',
      'i: call-f1',
    );
    const out = fastReject(Buffer.from(req, 'latin1'), '192.0.2.7', 40000, 1);
    assert.ok(out);
    const r = parseMessage(out);
    assert.ok(r.ok);
    assert.equal(getHeader(r.value, 'To'), '<sip:bob@example.com>;tag=b2');
    assert.equal(getHeader(r.value, 'Call-ID'), 'call-f1');
  });

  it('leaves unusual requests to the parser: folded lines, a missing Call-ID, two Vias on one line', () => {
    const folded = INVITE.replace('Call-ID: call-f1', 'Call-ID:\r\n call-f1');
    const noCallId = INVITE.replace('Call-ID: call-f1\r\n', '');
    const twoOnOne = INVITE.replace(
      'Via: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bK-f1;rport',
      'Via: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bK-f1, SIP/2.0/UDP 10.0.0.8;branch=z9hG4bK-f2',
    );
    for (const bad of [folded, noCallId, twoOnOne, 'INVITE sip:x SIP/2.0\r\n'])
      assert.equal(fastReject(Buffer.from(bad, 'latin1'), '192.0.2.7', 40000, 1), undefined);
  });
});
