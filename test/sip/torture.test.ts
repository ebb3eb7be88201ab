/**
 * RFC 4475 torture messages (test/fixtures/sip/rfc4475/*.dat, exact bytes).
 * Each valid message is checked field by field; each invalid one must be
 * refused with a named error, or accepted where RFC 4475 lets a liberal
 * element do so (the choice is stated next to the case).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  getCallId,
  getCSeq,
  getExpires,
  getFrom,
  getMaxForwards,
  getTag,
  getTo,
  getVias,
  parseContacts,
  parseNameAddr,
} from '../../src/sip/header-values.ts';
import { getHeader, getHeaders, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { errorStatus, parseMessage, parseMessageRaw } from '../../src/sip/parser.ts';
import { parseRequestUri, parseUri } from '../../src/sip/uri.ts';

const DIR = new URL('../fixtures/sip/rfc4475/', import.meta.url);
const load = (name: string): Buffer => readFileSync(new URL(`${name}.dat`, DIR));

function parseOk(name: string): SipMessage {
  const r = parseMessage(load(name));
  assert.ok(r.ok, `${name}: ${r.ok ? '' : r.error}`);
  return r.value;
}
function req(name: string): SipRequest {
  const m = parseOk(name);
  assert.equal(m.kind, 'request');
  return m as SipRequest;
}
function res(name: string): SipResponse {
  const m = parseOk(name);
  assert.equal(m.kind, 'response');
  return m as SipResponse;
}
const vias = (m: SipMessage) => {
  const v = getVias(m);
  assert.ok(v.ok);
  return v.value;
};
const tagOf = (r: ReturnType<typeof getFrom>): string | undefined => (r.ok ? getTag(r.value) : 'unparsed');

// ---- 3.1.1 valid messages ----

test('3.1.1.1 wsinv: a short tortuous INVITE', () => {
  const m = req('wsinv');
  assert.equal(m.method, 'INVITE');
  assert.equal(m.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam');
  assert.equal(tagOf(getTo(m)), '1918181833n');
  const from = getFrom(m);
  assert.ok(from.ok);
  assert.equal(from.value.displayName, 'J Rosenberg \\"');
  assert.equal(getTag(from.value), '98asjd8');
  assert.equal(getMaxForwards(m), 68);
  assert.deepEqual(getCSeq(m), { ok: true, value: { seq: 9, method: 'INVITE' } });
  const v = vias(m);
  assert.equal(v.length, 3);
  assert.deepEqual(
    v.map((x) => [x.transport, x.host, x.params[0]?.[1]]),
    [
      ['UDP', '192.0.2.2', 'z9hG4bK390skdjuw'.slice(7)],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ],
  );
  assert.equal(getHeader(m, 'Subject'), '');
  assert.equal(getHeader(m, 'NewFangledHeader'), 'newfangled value continued newfangled value');
  assert.equal(getHeader(m, 'UnknownHeaderWithUnusualValue'), ';;,,;;,;');
  assert.equal(getHeaders(m, 'Route').length, 1);
  const contacts = parseContacts(m);
  assert.ok(contacts.ok && contacts.value !== '*');
  assert.equal(contacts.value[0].displayName, 'Quoted string ""');
  assert.deepEqual(contacts.value[0].params, [
    ['newparam', 'newvalue'],
    ['secondparam', null],
    ['q', '0.33'],
  ]);
  assert.equal(m.body.length, 150);
});

test('3.1.1.2 intmeth: wide range of valid characters', () => {
  const m = req('intmeth');
  assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
  const uri = parseRequestUri(m.uri);
  assert.ok(uri.ok);
  assert.equal(uri.value.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  assert.equal(uri.value.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  const to = getTo(m);
  assert.ok(to.ok);
  assert.equal(to.value.displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
  const from = getFrom(m);
  assert.ok(from.ok);
  assert.equal(from.value.displayName, "token1~` token2'+_ token3*%!.-");
  assert.equal(getTag(from.value), "_token~1'+`*%!-.");
  assert.equal(from.value.params[0][1], '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"');
  assert.equal(getCallId(m), 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
  assert.equal(getHeader(m, "extensionHeader-!.%*+_`'~"), '\ufeff\u5927\u505c\u96fb');
  assert.equal(vias(m)[0].params[0][1], "z9hG4bK-.!%66*_+`'~");
});

test('3.1.1.3 esc01: valid use of the % escaping mechanism', () => {
  const m = req('esc01');
  const uri = parseRequestUri(m.uri);
  assert.ok(uri.ok);
  assert.equal(uri.value.user, 'sips:user@example.com');
  assert.equal(uri.value.host, 'example.net');
  const to = getTo(m);
  assert.ok(to.ok);
  assert.equal(to.value.uri.user, 'user');
  const from = getFrom(m);
  assert.ok(from.ok);
  assert.equal(from.value.uri.user, 'I have spaces');
  const c = parseContacts(m);
  assert.ok(c.ok && c.value !== '*');
  assert.equal(c.value[0].uri.user, 'caller');
  assert.deepEqual(c.value[0].uri.params, [
    ['lr', null],
    ['name', 'value%41'],
  ]);
  assert.equal(getCallId(m), 'esc01.239409asdfakjkn23onasd0-3234');
  assert.equal(getHeader(m, 'Content-Type'), 'application/sdp');
  assert.equal(m.body.length, 150);
});

test('3.1.1.4 escnull: escaped nulls in URIs', () => {
  const m = req('escnull');
  assert.equal(m.method, 'REGISTER');
  const to = getTo(m);
  assert.ok(to.ok);
  assert.equal(to.value.uri.user, 'null-\x00-null');
  const c = parseContacts(m);
  assert.ok(c.ok && c.value !== '*');
  assert.deepEqual(
    c.value.map((x) => x.uri.user),
    ['\x00', '\x00\x00'],
  );
  assert.deepEqual(vias(m)[0].params, [['branch', 'z9hG4bKkdjuw']]);
});

test('3.1.1.5 esc02: % that is not an escape, in method and header name', () => {
  const m = req('esc02');
  assert.equal(m.method, 'RE%47IST%45R');
  assert.deepEqual(getCSeq(m), { ok: true, value: { seq: 29344, method: 'RE%47IST%45R' } });
  const to = getTo(m);
  assert.ok(to.ok);
  assert.equal(to.value.displayName, '%Z%45');
  assert.equal(getHeaders(m, 'Contact').length, 2);
  assert.equal(getHeader(m, 'C%6Fntact'), '<sip:alias2@host2.example.com>');
  assert.equal(vias(m)[0].params[0][1], 'z9hG4bK209%fzsnel234');
});

test('3.1.1.6 lwsdisp: no LWS between display name and <', () => {
  const m = req('lwsdisp');
  const from = getFrom(m);
  assert.ok(from.ok);
  assert.equal(from.value.displayName, 'caller');
  assert.equal(getTag(from.value), '323');
});

test('3.1.1.7 longreq: long values in header fields', () => {
  const m = req('longreq');
  assert.equal(vias(m).length, 34);
  assert.equal(getCallId(m), 'longreq.one' + 'really'.repeat(20) + 'longcallid');
  const to = getTo(m);
  assert.ok(to.ok);
  assert.equal(to.value.uri.port, 6000);
  assert.equal(to.value.uri.params.length, 3);
  assert.equal(tagOf(getFrom(m)), '12' + '982'.repeat(50) + '424');
  assert.equal(m.body.length, 150);
});

test('3.1.1.8 dblreq: extra trailing octets in a UDP datagram are discarded', () => {
  const m = req('dblreq');
  assert.equal(m.method, 'REGISTER');
  assert.equal(getCallId(m), 'dblreq.0ha0isndaksdj99sdfafnl3lk233412');
  assert.equal(m.body.length, 0);
});

test('3.1.1.9 semiuri: semicolon-separated parameters in the URI user part', () => {
  const m = req('semiuri');
  const u = parseRequestUri(m.uri);
  assert.ok(u.ok);
  assert.equal(u.value.user, 'user;par=u@example.net');
  assert.equal(u.value.host, 'example.com');
  assert.deepEqual(getHeaders(m, 'Accept'), [
    'application/sdp',
    'application/pkcs7-mime',
    'multipart/mixed',
    'multipart/signed',
    'message/sip',
    'message/sipfrag',
  ]);
});

test('3.1.1.10 transports: varied and unknown transport types', () => {
  const m = req('transports');
  assert.deepEqual(
    vias(m).map((v) => v.transport),
    ['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP'],
  );
  assert.equal(getCallId(m), 'transports.kijh4akdnaqjkwendsasfdj');
});

test('3.1.1.11 mpart01: multipart body with binary octets is framed by bytes', () => {
  const m = req('mpart01');
  assert.equal(m.method, 'MESSAGE');
  assert.equal(m.body.length, 553);
  assert.ok(m.body.includes(0));
  const raw = load('mpart01');
  assert.deepEqual(Buffer.from(m.body), raw.subarray(raw.length - 553));
  assert.equal(vias(m)[0].port, 5070);
  assert.equal(getHeader(m, 'Identity')?.length, 172);
});

test('3.1.1.12 unreason: UTF-8 reason phrase', () => {
  const m = res('unreason');
  assert.equal(m.status, 200);
  assert.ok(m.reason.startsWith('= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e'));
  assert.ok(m.reason.endsWith('\u043f\u0440\u043e\u0441\u0442\u043e\u0435'));
  assert.equal(m.body.length, 154);
});

test('3.1.1.13 noreason: empty reason phrase', () => {
  const m = res('noreason');
  assert.equal(m.status, 100);
  assert.equal(m.reason, '');
  assert.equal(tagOf(getTo(m)), '902jndnke3');
});

// ---- 3.1.2 invalid messages ----

const refused: Array<[string, string, string]> = [
  ['3.1.2.1', 'badinv01', 'malformed Via'],
  ['3.1.2.2', 'clerr', 'Content-Length larger than body'],
  ['3.1.2.3', 'ncl', 'bad Content-Length'],
  ['3.1.2.4', 'scalar02', 'CSeq number too large'],
  ['3.1.2.5', 'scalarlg', 'CSeq number too large'],
  ['3.1.2.6', 'quotbal', 'malformed To'],
  ['3.1.2.7', 'ltgtruri', 'malformed Request-URI'],
  ['3.1.2.8', 'lwsruri', 'malformed Request-URI'],
  // 3.1.2.11: rejecting is acceptable; we do not silently drop the escaped headers.
  ['3.1.2.11', 'escruri', 'headers not allowed in Request-URI'],
  ['3.1.2.13', 'regbadct', 'malformed Contact'],
  // 3.1.2.14: a liberal element could strip the spaces; we refuse, as RFC 3261 allows none there.
  ['3.1.2.14', 'badaspec', 'malformed To'],
  ['3.1.2.15', 'baddn', 'malformed From'],
  ['3.1.2.16', 'badvers', 'unsupported SIP version'],
  ['3.1.2.17', 'mismatch01', 'CSeq method does not match'],
  ['3.1.2.18', 'mismatch02', 'CSeq method does not match'],
  ['3.1.2.19', 'bigcode', 'bad status code'],
];

for (const [section, name, error] of refused) {
  test(`${section} ${name}: refused with "${error}"`, () => {
    assert.deepEqual(parseMessage(load(name)), { ok: false, error });
  });
}

test('refused requests whose head is readable can still be answered (400, or 505 for the version)', () => {
  for (const name of [
    'badinv01',
    'quotbal',
    'ltgtruri',
    'lwsruri',
    'escruri',
    'regbadct',
    'badaspec',
    'baddn',
    'mismatch01',
  ]) {
    const raw = parseMessageRaw(load(name));
    assert.ok(raw.ok, name);
    assert.equal(raw.value.kind, 'request');
  }
  assert.equal(errorStatus('unsupported SIP version'), 505);
  assert.equal(errorStatus('malformed To'), 400);
});

test('3.1.2.9 lwsstart and 3.1.2.10 trws: extra SP in the Request-Line accepted and not kept (liberal choice)', () => {
  const a = req('lwsstart');
  assert.equal(a.uri, 'sip:user@example.com');
  assert.equal(a.version, 'SIP/2.0');
  const b = req('trws');
  assert.equal(b.uri, 'sip:remote-target@example.com');
  assert.equal(b.version, 'SIP/2.0');
});

test('3.1.2.12 baddate: a non-GMT Date is accepted (the parser does not interpret Date)', () => {
  const m = req('baddate');
  assert.equal(getHeader(m, 'Date'), 'Fri, 01 Jan 2010 16:00:00 EST');
});

// ---- 3.2 transaction layer, 3.3 application layer, 3.4 backward compatibility ----

test('3.2.1 badbranch: a bare magic cookie branch is syntactically valid', () => {
  const m = req('badbranch');
  assert.deepEqual(vias(m)[0].params, [['branch', 'z9hG4bK']]);
});

test('3.3.1 insuf: missing To, From and Call-ID are named', () => {
  assert.deepEqual(parseMessage(load('insuf')), { ok: false, error: 'missing From' });
});

test('3.3.2 unkscm, 3.3.3 novelsc, 3.3.4 unksm2: unknown schemes parse; 416 is for the element above', () => {
  const a = req('unkscm');
  const ua = parseUri(a.uri);
  assert.ok(ua.ok);
  assert.equal(ua.value.scheme, 'nobodyknowsthisscheme');
  assert.equal(ua.value.opaque, 'totallyopaquecontent');
  const b = req('novelsc');
  const ub = parseUri(b.uri);
  assert.ok(ub.ok);
  assert.equal(ub.value.scheme, 'soap.beep');
  const c = req('unksm2');
  const to = getTo(c);
  assert.ok(to.ok);
  assert.equal(to.value.uri.scheme, 'isbn');
  const contacts = parseContacts(c);
  assert.ok(contacts.ok && contacts.value !== '*');
  assert.equal(contacts.value[0].uri.scheme, 'name');
});

test('3.3.5 bext01, 3.3.6 invut, 3.3.7 regaut01: unknown extensions, body type, auth scheme parse', () => {
  const a = req('bext01');
  assert.deepEqual(getHeaders(a, 'Require'), ['nothingSupportsThis', 'nothingSupportsThisEither']);
  assert.deepEqual(getHeaders(a, 'Proxy-Require'), ['noProxiesSupportThis', 'norDoAnyProxiesSupportThis']);
  const b = req('invut');
  assert.equal(getHeader(b, 'Content-Type'), 'application/unknownformat');
  assert.equal(b.body.length, 40);
  const c = req('regaut01');
  assert.equal(getHeader(c, 'Authorization'), 'NoOneKnowsThisScheme opaque-data=here');
  assert.equal(getHeader(c, 'Content-Length'), '0');
});

test('3.3.8 multi01 and 3.3.9 mcl01: several values for single-valued fields are refused', () => {
  assert.deepEqual(parseMessage(load('multi01')), { ok: false, error: 'multiple From headers' });
  assert.deepEqual(parseMessage(load('mcl01')), { ok: false, error: 'conflicting Content-Length' });
});

test('3.3.10 bcast, 3.3.11 zeromf: broadcast Via and Max-Forwards 0 are valid syntax', () => {
  const a = res('bcast');
  assert.equal(vias(a)[1].host, '255.255.255.255');
  const b = req('zeromf');
  assert.equal(getMaxForwards(b), 0);
});

test('3.3.12 cparam01, 3.3.13 cparam02: Contact parameter belongs to the header without <>, to the URI with <>', () => {
  const a = parseContacts(req('cparam01'));
  assert.ok(a.ok && a.value !== '*');
  assert.deepEqual(a.value[0].params, [['unknownparam', null]]);
  assert.deepEqual(a.value[0].uri.params, []);
  const b = parseContacts(req('cparam02'));
  assert.ok(b.ok && b.value !== '*');
  assert.deepEqual(b.value[0].params, []);
  assert.deepEqual(b.value[0].uri.params, [['unknownparam', null]]);
});

test('3.3.14 regescrt: escaped header in a bracketed Contact URI', () => {
  const c = parseContacts(req('regescrt'));
  assert.ok(c.ok && c.value !== '*');
  assert.deepEqual(c.value[0].uri.headers, [['Route', '<sip:sip.example.com>']]);
});

test('3.3.15 sdp01: unacceptable Accept parses', () => {
  assert.equal(getHeader(req('sdp01'), 'Accept'), 'text/nobodyKnowsThis');
});

test('3.4.1 inv2543: RFC 2543 syntax (no Max-Forwards, no branch) is accepted', () => {
  const m = req('inv2543');
  assert.equal(getMaxForwards(m), undefined);
  assert.deepEqual(vias(m)[0].params, []);
  const to = parseNameAddr(getHeader(m, 'To') ?? '');
  assert.ok(to.ok);
  assert.deepEqual(to.value.params, [['user', 'phone']]);
  assert.equal(getExpires(m), undefined);
  assert.equal(m.body.length, 105);
});

test('every fixture is covered by a case above', () => {
  const names = readdirSync(DIR).map((f) => f.replace(/\.dat$/, ''));
  assert.equal(names.length, 49);
  for (const n of names) {
    // Nothing escapes as an exception, whatever the verdict.
    assert.equal(typeof parseMessage(load(n)).ok, 'boolean');
  }
});
