import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SipRequest } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { serialize } from '../../src/sip/serializer.ts';

const base = (): SipRequest => ({
  kind: 'request',
  method: 'MESSAGE',
  uri: 'sip:bob@example.com',
  version: 'SIP/2.0',
  headers: [
    { name: 'Via', value: 'SIP/2.0/UDP h;branch=z9hG4bK1' },
    { name: 'Content-Length', value: '999' },
    { name: 'From', value: '<sip:a@example.com>;tag=1' },
    { name: 'To', value: '<sip:bob@example.com>' },
    { name: 'Call-ID', value: 'c' },
    { name: 'CSeq', value: '1 MESSAGE' },
    { name: 'Max-Forwards', value: '70' },
    { name: 'Subject', value: 'h\u00e9llo' },
  ],
  body: Uint8Array.from([0xe2, 0x82, 0xac, 0x00]),
});

test('Content-Length is set from the body bytes, in place', () => {
  const out = serialize(base()).toString('latin1');
  assert.ok(
    out.startsWith(
      'MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n',
    ),
  );
  assert.equal(out.match(/Content-Length/g)?.length, 1);
});

test('Content-Length appended when absent; UTF-8 header text and binary body round trip', () => {
  const m = base();
  m.headers = m.headers.filter((h) => h.name !== 'Content-Length');
  const bytes = serialize(m);
  assert.ok(bytes.includes(Buffer.from('Content-Length: 4\r\n\r\n')));
  const back = parseMessage(bytes, { stream: true });
  assert.ok(back.ok, back.ok ? '' : back.error);
  assert.deepEqual(back.value.body, m.body);
  assert.equal(back.value.headers.find((h) => h.name === 'Subject')?.value, 'h\u00e9llo');
});
