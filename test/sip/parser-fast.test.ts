/**
 * The parser's fast paths against its reference paths: the plain-head scanner
 * against the general line parser, and the allocation-free header checks
 * against the full grammar. Seeded mutations of the fixture corpus and of its
 * header values; any difference is a bug in a fast path.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCSeq, parseNameAddr, parseVia } from '../../src/sip/header-values.ts';
import {
  decodeHead,
  findHeaderEnd,
  parseHead,
  parseHeadPlain,
  parseMessageRaw,
  skipLeadingCrlf,
} from '../../src/sip/parser.ts';
import { parseHeadGeneral } from '../../src/sip/parser-general.ts';
import { parseRequestUri } from '../../src/sip/uri.ts';
import { validateMessage, validateMessageFull } from '../../src/sip/validate.ts';
import { fastCSeq, fastNameAddr, fastSipUri, fastValid, fastVia } from '../../src/sip/validate-fast.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { loadCorpus } from '../fixtures/sip/corpus.ts';

const SEED = 0xfa57;
const corpus = loadCorpus().map((f) => f.bytes);
const SPECIAL = '\r\n:;,"<>%@ \t\\=?[]/.-*0123456789ABZabz\x00\xff';

function mutateText(rnd: SeededRandom, s: string): string {
  let t = s;
  for (let r = 1 + rnd.int(2); r > 0; r--) {
    const at = rnd.int(t.length + 1);
    switch (rnd.int(5)) {
      case 0:
        t = t.slice(0, at) + SPECIAL[rnd.int(SPECIAL.length)] + t.slice(at);
        break;
      case 1:
        t = t.slice(0, at) + t.slice(at + 1 + rnd.int(4));
        break;
      case 2:
        t = t.slice(0, at) + SPECIAL[rnd.int(SPECIAL.length)] + t.slice(at + 1);
        break;
      case 3:
        t = t.slice(0, at);
        break;
      default: {
        const len = rnd.int(12);
        t = t.slice(0, at + len) + t.slice(at, at + len) + t.slice(at + len);
      }
    }
  }
  return t;
}

function heads(): string[] {
  const out: string[] = [];
  for (const b of corpus) {
    const from = skipLeadingCrlf(b);
    const end = findHeaderEnd(b, from);
    if (end) out.push(decodeHead(b, from, end.headEnd));
  }
  return out;
}

test('plain-head scanner and general line parser agree on the corpus and its mutations', () => {
  const rnd = new SeededRandom(SEED);
  const all = heads();
  let plain = 0;
  for (let n = 0; n < 6000; n++) {
    const base = all[rnd.int(all.length)];
    const head = n < all.length ? all[n] : mutateText(rnd, base);
    assert.deepEqual(parseHead(head), parseHeadGeneral(head), `case ${n}: ${JSON.stringify(head.slice(0, 200))}`);
    if (parseHead(head).ok) plain++;
  }
  assert.ok(plain > 2000, `enough accepted heads to mean something (${plain})`);
});

test('validateMessage (fast checks first) and validateMessageFull give the same verdict and error', () => {
  const rnd = new SeededRandom(SEED + 1);
  let accepted = 0;
  for (let n = 0; n < 6000; n++) {
    const base = corpus[rnd.int(corpus.length)];
    const bytes = n < corpus.length ? corpus[n] : Buffer.from(mutateText(rnd, base.toString('latin1')), 'latin1');
    const raw = parseMessageRaw(bytes);
    if (!raw.ok) continue;
    const fast = validateMessage(raw.value);
    assert.deepEqual(fast, validateMessageFull(raw.value), `case ${n}`);
    if (fast.ok) accepted++;
  }
  assert.ok(accepted > 1000, `enough accepted messages to mean something (${accepted})`);
});

type FastHits = { Via: number; name: number; CSeq: number; uri: number };

/** When the fast check of a header value of `kind` accepts it, the full grammar must accept it too. */
function checkFastAgainstFull(kind: string, v: string, hits: FastHits): void {
  const msg = `${kind} ${JSON.stringify(v)}`;
  if (kind === 'Via' && fastVia(v)) {
    hits.Via++;
    assert.ok(parseVia(v).ok, msg);
  } else if ((kind === 'From' || kind === 'To' || kind === 'Contact') && fastNameAddr(v)) {
    hits.name++;
    assert.ok(parseNameAddr(v).ok, msg);
  } else if (kind === 'CSeq' && fastCSeq(v, undefined)) {
    hits.CSeq++;
    assert.ok(parseCSeq(v).ok, msg);
  } else if (kind === 'uri' && fastSipUri(v, 0, v.length)) {
    hits.uri++;
    assert.ok(parseRequestUri(v).ok, msg);
  }
}

test('each fast header check accepts only what the full grammar accepts', () => {
  const rnd = new SeededRandom(SEED + 2);
  const values: Record<string, string[]> = { Via: [], From: [], To: [], Contact: [], CSeq: [], uri: [] };
  for (const b of corpus) {
    const raw = parseMessageRaw(b);
    if (!raw.ok) continue;
    if (raw.value.kind === 'request') values.uri.push(raw.value.uri);
    for (const h of raw.value.headers) values[h.name]?.push(h.value);
  }
  const hits: FastHits = { Via: 0, name: 0, CSeq: 0, uri: 0 };
  for (let n = 0; n < 20000; n++) {
    const kind = ['Via', 'From', 'To', 'Contact', 'CSeq', 'uri'][n % 6];
    const pool = values[kind];
    const v = n < 600 ? pool[((n / 6) % pool.length) | 0] : mutateText(rnd, pool[rnd.int(pool.length)]);
    checkFastAgainstFull(kind, v, hits);
  }
  for (const [k, h] of Object.entries(hits)) assert.ok(h > 300, `fast path for ${k} taken often enough (${h})`);
});

/** Values assembled from grammar pieces, mostly valid, so the corner cases of each check come up often. */
function assembled(rnd: SeededRandom, kind: string): string {
  // Four times in five a piece that keeps the value valid, else one that may break it.
  const pick = (good: string[], bad: string[]): string =>
    rnd.int(5) > 0 || bad.length === 0 ? good[rnd.int(good.length)] : bad[rnd.int(bad.length)];
  const host = (): string =>
    pick(
      ['a.example.com', '192.0.2.1', '[2001:db8::1]', '[::1]', 'x.'],
      ['[]', '[g::1]', '[1.2]', 'a-.b', '-a', 'a..b', 'a_b', ''],
    ) + pick(['', ':5060', ':65535', ':0'], [':65536', ':', ':123456', ':5x']);
  const uri = (): string =>
    pick(['sip:', 'sips:'], ['SIP:', 'tel:', 'sip:%41', 'sip:a:pw@', 'sip:a b@', 'sip:a,b@', 'sip:a?b@', 'sip:@']) +
    pick(['', 'bob@', 'b.o-b@'], ['b%20b@', 'b;c=d@']) +
    host() +
    pick(['', ';transport=udp', ';lr', ';x='], [';=y', ';a=b=c', ';a;b', '?h=v', ';a=%41', ' ']);
  const params = (): string => {
    let p = '';
    for (let i = rnd.int(3); i > 0; i--) {
      p +=
        pick([';', ' ;', '; '], [';;', ',', '']) +
        pick(['tag', 'ttl', 'rport', 'branch', 'received', 'maddr', 'expires', 'x'], ['TTL', 'Branch', '']) +
        pick(
          ['', '=1', '=255', '=65535', '=a.b', '=[::1]', '="q"', '="a\\\\"', '= 7'],
          ['=', '=256', '=65536', '="x', '="a\\"', '=a"b'],
        );
    }
    return p;
  };
  switch (kind) {
    case 'Via':
      return (
        pick(['SIP/2.0/UDP ', 'SIP/2.0/TCP  '], ['SIP / 2.0 / UDP ', 'SIP/2.0/ ', 'SIP/2.0/U@P ']) + host() + params()
      );
    case 'CSeq':
      return (
        pick(['1', '2147483647', ' 7'], ['', '2147483648', '00000000001', 'x']) +
        pick([' ', '\t', '  '], ['']) +
        pick(['INVITE', 'REGISTER'], ['', 'A B', 'IN@']) +
        pick(['', ' '], [])
      );
    case 'uri':
      return uri();
    default: {
      const angle = rnd.int(3) > 0;
      const dn = angle
        ? pick(['', '"Alice" ', '"A\\\\" ', 'Bob ', 'A  B '], ['"A\\"B" ', '"A\\" ', '"unterminated ', 'B@b '])
        : '';
      return dn + (angle ? pick(['<'], ['']) : '') + uri() + (angle ? pick(['>'], ['', '>>']) : '') + params();
    }
  }
}

test('each fast header check accepts only what the full grammar accepts, on assembled values', () => {
  const rnd = new SeededRandom(SEED + 3);
  const hits: FastHits = { Via: 0, name: 0, CSeq: 0, uri: 0 };
  for (let n = 0; n < 40000; n++) {
    const kind = ['Via', 'From', 'CSeq', 'uri'][n % 4];
    const v = assembled(rnd, kind);
    checkFastAgainstFull(kind, v, hits);
  }
  for (const [k, h] of Object.entries(hits)) assert.ok(h > 200, `fast path for ${k} taken often enough (${h})`);
});

test('the fast paths take the plain messages phones send', () => {
  for (const f of loadCorpus().filter((c) => c.name.startsWith('phones/'))) {
    const b = f.bytes;
    const from = skipLeadingCrlf(b);
    const end = findHeaderEnd(b, from);
    assert.ok(end, f.name);
    assert.ok(parseHeadPlain(decodeHead(b, from, end.headEnd)), `${f.name}: plain head`);
    const raw = parseMessageRaw(b);
    assert.ok(raw.ok && fastValid(raw.value), `${f.name}: fast checks`);
  }
});
