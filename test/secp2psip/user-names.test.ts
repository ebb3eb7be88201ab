/** Which SIP user names a SecP2PSIP user may have (src/secp2psip/messages.ts NAME_RE). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUsableUserName } from '../../src/secp2psip/messages.ts';
import { parseUri } from '../../src/sip/uri.ts';

test('every RFC 3261 unreserved user part that is safe as a ring key and a file name is a user name', () => {
  for (const name of ['john.doe', 'a.b.c', '!', '~', '*', "'", '(', ')', "o'neil(x)", '+15551234', 'A-Z_0-9', 'x.1a'])
    assert.ok(isUsableUserName(name), name);
  // Escapes count as the character they stand for (the URI parser unescapes, RFC 3261 19.1.4).
  const u = parseUri('sip:john%2Edoe@example.com');
  assert.ok(u.ok && isUsableUserName(u.value.user ?? ''));
  assert.equal(u.ok && u.value.user, 'john.doe');
});

test('the rest is refused: path tricks, piece-key look-alikes, URI delimiters, controls, too long', () => {
  for (const name of [
    '',
    '.',
    '..',
    '.hidden',
    'john.1', // would be the key of john's piece 1
    'a.23',
    'a/b',
    'a\\b',
    'a;b',
    'a?b',
    'a&b',
    'a=b',
    'a$b',
    'a,b',
    'a b',
    'a%b',
    'a\r\nb',
    'é',
    'x'.repeat(65),
  ])
    assert.ok(!isUsableUserName(name), JSON.stringify(name));
  assert.ok(isUsableUserName('x'.repeat(64)));
});
