import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatNameAddr, formatVia, parseNameAddr, parseVia } from '../../src/sip/header-values.ts';
import type { SipMessage } from '../../src/sip/message.ts';
import { parseMessageRaw } from '../../src/sip/parser.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { formatUri, parseUri } from '../../src/sip/uri.ts';
import { loadCorpus } from '../fixtures/sip/corpus.ts';

/** What serialisation is allowed to change: Content-Length is rewritten from the body (added when absent). */
function normalise(m: SipMessage): SipMessage {
  const headers = m.headers.filter(
    (h, i, all) => h.name !== 'Content-Length' || all.findIndex((x) => x.name === 'Content-Length') === i,
  );
  const at = headers.findIndex((h) => h.name === 'Content-Length');
  const cl = { name: 'Content-Length', value: String(m.body.length) };
  if (at >= 0) headers[at] = cl;
  else headers.push(cl);
  return { ...m, headers };
}

const corpus = loadCorpus();
const parsed = corpus.flatMap((f) => {
  const r = parseMessageRaw(f.bytes);
  return r.ok ? [{ name: f.name, msg: r.value }] : [];
});

test('the corpus is large enough to mean something', () => {
  assert.ok(parsed.length >= 50, `only ${parsed.length} messages parse`);
});

test('parse -> serialize -> parse yields the same message, and serialisation is a fixpoint', () => {
  for (const { name, msg } of parsed) {
    const bytes = serialize(msg);
    const again = parseMessageRaw(bytes, { stream: true });
    assert.ok(again.ok, `${name}: ${again.ok ? '' : again.error}`);
    assert.deepEqual(again.value, normalise(msg), name);
    assert.deepEqual(serialize(again.value), bytes, name);
  }
});

test('URI, name-addr and Via values format back to an equal parse', () => {
  let uris = 0;
  let addrs = 0;
  let vias = 0;
  for (const { name, msg } of parsed) {
    if (msg.kind === 'request') {
      const u = parseUri(msg.uri);
      if (u.ok) {
        uris++;
        assert.deepEqual(parseUri(formatUri(u.value)), u, `${name} ${msg.uri}`);
      }
    }
    for (const h of msg.headers) {
      if (
        ['From', 'To', 'Contact', 'Route', 'Record-Route', 'P-Preferred-Identity', 'Refer-To', 'Referred-By'].includes(
          h.name,
        )
      ) {
        const n = parseNameAddr(h.value);
        if (!n.ok) continue;
        addrs++;
        assert.deepEqual(parseNameAddr(formatNameAddr(n.value)), n, `${name} ${h.value}`);
      }
      if (h.name === 'Via') {
        const v = parseVia(h.value);
        if (!v.ok) continue;
        vias++;
        assert.deepEqual(parseVia(formatVia(v.value)), v, `${name} ${h.value}`);
      }
    }
  }
  assert.ok(uris > 40 && addrs > 120 && vias > 80, `${uris} ${addrs} ${vias}`);
});
