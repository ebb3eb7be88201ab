import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FrameEvent, StreamFramer } from '../../src/sip/framing.ts';
import { getHeader } from '../../src/sip/message.ts';

function msg(callId: string, body = ''): Buffer {
  return Buffer.from(
    [
      'OPTIONS sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK' + callId,
      'Max-Forwards: 70',
      'From: <sip:alice@example.com>;tag=1',
      'To: <sip:bob@example.com>',
      `Call-ID: ${callId}`,
      'CSeq: 1 OPTIONS',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
}

const callIds = (evs: FrameEvent[]): string[] =>
  evs.flatMap((e) => (e.kind === 'message' && e.result.ok ? [getHeader(e.result.value, 'Call-ID') ?? ''] : []));

test('several messages in one chunk', () => {
  const f = new StreamFramer();
  const evs = f.push(Buffer.concat([msg('a', 'xyz'), msg('b'), msg('c', 'hello')]));
  assert.deepEqual(callIds(evs), ['a', 'b', 'c']);
  assert.equal(f.buffered, 0);
});

test('one message across many one-byte chunks', () => {
  const f = new StreamFramer();
  const all = msg('slow', 'body bytes');
  const evs: FrameEvent[] = [];
  for (const b of all) evs.push(...f.push(Uint8Array.of(b)));
  assert.deepEqual(callIds(evs), ['slow']);
  const m = evs[0];
  assert.ok(m.kind === 'message' && m.result.ok);
  assert.equal(Buffer.from(m.result.value.body).toString(), 'body bytes');
});

test('double-CRLF ping and single-CRLF pong (RFC 5626 section 3.5.1)', () => {
  const f = new StreamFramer();
  assert.deepEqual(f.push(Buffer.from('\r\n\r\n')), [{ kind: 'ping' }]);
  assert.deepEqual(f.push(Buffer.from('\r\n')), [{ kind: 'pong' }]);
  // The second half of a split ping is still a ping.
  assert.deepEqual(f.push(Buffer.from('\r\n')), [{ kind: 'ping' }]);
  const evs = f.push(Buffer.concat([Buffer.from('\r\n\r\n'), msg('after')]));
  assert.equal(evs[0].kind, 'ping');
  assert.deepEqual(callIds(evs), ['after']);
});

test('missing Content-Length on a stream is a framing error, and the framer stays failed', () => {
  const f = new StreamFramer();
  const noLen = Buffer.from(msg('x').toString().replace('Content-Length: 0\r\n', ''));
  assert.deepEqual(f.push(noLen), [{ kind: 'error', error: 'missing Content-Length' }]);
  assert.deepEqual(f.push(msg('y')), [{ kind: 'error', error: 'missing Content-Length' }]);
});

test('size limit is enforced before more is buffered', () => {
  const f = new StreamFramer({ maxMessageSize: 1024 });
  const evs = f.push(Buffer.alloc(10_000, 0x41));
  assert.deepEqual(evs, [{ kind: 'error', error: 'message too large' }]);
  assert.ok(f.buffered <= 1025);
  const g = new StreamFramer({ maxMessageSize: 1024 });
  assert.deepEqual(g.push(msg('big', 'x'.repeat(2000)).subarray(0, 300)), [
    { kind: 'error', error: 'message too large' },
  ]);
});

test('a well framed but invalid message is reported with its raw form', () => {
  const f = new StreamFramer();
  const bad = Buffer.from(msg('z').toString().replace('CSeq: 1 OPTIONS', 'CSeq: 1 INVITE'));
  const evs = f.push(Buffer.concat([bad, msg('ok')]));
  assert.equal(evs.length, 2);
  const first = evs[0];
  assert.ok(first.kind === 'message' && !first.result.ok && first.raw);
  assert.equal(first.result.ok ? '' : first.result.error, 'CSeq method does not match');
  assert.deepEqual(callIds(evs), ['ok']);
});
