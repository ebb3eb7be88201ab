/**
 * Mutation fuzzing of the parser and the stream framer with a seeded random
 * source, so any failure reproduces from the printed seed and case number.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FrameEvent, StreamFramer } from '../../src/sip/framing.ts';
import { getCSeq, getFrom, getTo, getVias, parseContacts } from '../../src/sip/header-values.ts';
import type { SipMessage, SipRequest } from '../../src/sip/message.ts';
import { parseMessage, parseMessageRaw } from '../../src/sip/parser.ts';
import { buildResponse } from '../../src/sip/response.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { loadCorpus } from '../fixtures/sip/corpus.ts';

const SEED = 0x5eed4475;
const corpus = loadCorpus().map((f) => f.bytes);
const SPECIAL = Buffer.from('\r\n:;,"<>%@ \t\\=?[]/\x00\xff');

function mutate(rnd: SeededRandom, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const rounds = 1 + rnd.int(2);
  for (let r = 0; r < rounds; r++) {
    const at = rnd.int(b.length + 1);
    switch (rnd.int(7)) {
      case 0: // bit flip
        if (b.length > 0) b[Math.min(at, b.length - 1)] ^= 1 << rnd.int(8);
        break;
      case 1: // truncation
        b = b.subarray(0, at);
        break;
      case 2: // insertion of random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(rnd.bytes(1 + rnd.int(8))), b.subarray(at)]);
        break;
      case 3: // insertion of a grammar-significant byte
        b = Buffer.concat([
          b.subarray(0, at),
          SPECIAL.subarray(rnd.int(SPECIAL.length)).subarray(0, 1),
          b.subarray(at),
        ]);
        break;
      case 4: {
        // splice with another message
        const other = corpus[rnd.int(corpus.length)];
        const from = rnd.int(other.length);
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + rnd.int(200))]);
        break;
      }
      case 5: // deletion
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rnd.int(16))]);
        break;
      default: {
        // duplication of a range (header lines, quotes, brackets)
        const len = rnd.int(40);
        b = Buffer.concat([b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len)]);
      }
    }
  }
  return b;
}

/** Everything an element does with a message it accepted must not throw either. */
function exercise(m: SipMessage): void {
  getVias(m);
  getFrom(m);
  getTo(m);
  getCSeq(m);
  parseContacts(m);
  if (m.kind === 'request') {
    parseUri(m.uri);
    buildResponse(m as SipRequest, 400, 'Bad Request');
  }
  const again = parseMessageRaw(serialize(m), { stream: true });
  assert.ok(again.ok, again.ok ? '' : `re-parse of an accepted message failed: ${again.error}`);
}

test('mutated messages never throw, and accepted ones survive serialisation', () => {
  const rnd = new SeededRandom(SEED);
  let accepted = 0;
  const cases = 6000;
  for (let i = 0; i < cases; i++) {
    const input = mutate(rnd, corpus[rnd.int(corpus.length)]);
    try {
      const raw = parseMessageRaw(input);
      const full = parseMessage(input);
      assert.equal(typeof full.ok, 'boolean');
      if (raw.ok) exercise(raw.value);
      if (full.ok) accepted++;
    } catch (e) {
      assert.fail(`seed ${SEED} case ${i}: ${(e as Error).stack}\ninput: ${JSON.stringify(input.toString('latin1'))}`);
    }
  }
  // The mutations must leave a fair share valid, or the accepted path is not exercised.
  assert.ok(accepted > cases / 20 && accepted < cases, `${accepted} accepted`);
});

test('random bytes never throw', () => {
  const rnd = new SeededRandom(SEED + 1);
  for (let i = 0; i < 2000; i++) {
    const input = Buffer.from(rnd.bytes(rnd.int(300)));
    if (rnd.int(2) === 0) input.write('INVITE sip:a@b SIP/2.0\r\n', 0, 'latin1');
    assert.equal(typeof parseMessage(input).ok, 'boolean');
    new StreamFramer({ maxMessageSize: 256 }).push(input);
  }
});

function messagesOf(events: FrameEvent[]): Array<SipMessage | string> {
  return events.map((e) => {
    if (e.kind === 'message') return e.result.ok ? e.result.value : `invalid: ${e.result.error}`;
    return e.kind === 'error' ? `error: ${e.error}` : e.kind;
  });
}

test('the framer fed random chunkings yields the same messages as whole parsing', () => {
  const rnd = new SeededRandom(SEED + 2);
  // Messages that are valid on a stream: exact Content-Length and no trailing bytes.
  const streamable = corpus.flatMap((b) => {
    const r = parseMessageRaw(b, { stream: true });
    return r.ok ? [serialize(r.value)] : [];
  });
  assert.ok(streamable.length > 40);
  for (let run = 0; run < 300; run++) {
    const parts: Buffer[] = [];
    const expected: Array<SipMessage | string> = [];
    const n = 1 + rnd.int(6);
    for (let k = 0; k < n; k++) {
      if (rnd.int(4) === 0) {
        parts.push(Buffer.from('\r\n\r\n'));
        expected.push('ping');
      }
      const m = streamable[rnd.int(streamable.length)];
      parts.push(m);
      const whole = parseMessage(m, { stream: true });
      expected.push(whole.ok ? whole.value : `invalid: ${whole.error}`);
    }
    const stream = Buffer.concat(parts);
    const framer = new StreamFramer();
    const events: FrameEvent[] = [];
    let off = 0;
    while (off < stream.length) {
      const len = rnd.int(4) === 0 ? 1 + rnd.int(3) : 1 + rnd.int(700);
      events.push(...framer.push(stream.subarray(off, off + len)));
      off += len;
    }
    // A ping split in two halves is reported as pong then ping (see StreamFramer.keepAlives).
    const got = messagesOf(events).filter((e, i, all) => !(e === 'pong' && all[i + 1] === 'ping'));
    assert.deepEqual(got, expected, `run ${run}`);
    assert.equal(framer.buffered, 0);
  }
});
