/**
 * A key read that fails because too few pieces answered (holders silent, records gone while the ring
 * repairs) is transient: 480 with Retry-After, the missing pieces logged. One that fails because pieces were
 * refused or disagree stays 403 and names the holders (attacks.test.ts covers more of those).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { METHOD } from '../../src/dht/chord/messages.ts';
import type { Caller, Payload } from '../../src/rpc/types.ts';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import type { BootstrapServer } from '../../src/secp2psip/bootstrap-server.ts';
import type { LocalUser } from '../../src/secp2psip/call-common.ts';
import { placeCall } from '../../src/secp2psip/caller.ts';
import { sendIm } from '../../src/secp2psip/messaging.ts';
import { pieceKey } from '../../src/secp2psip/ring-records.ts';
import { SIP_RETRY_AFTER_S, sipRetryAfterOf, sipStatusOf } from '../../src/sip/error-status.ts';
import { OverlayError } from '../../src/util/errors.ts';
import { forgedPieces } from './forged-pieces.ts';
import { bindPhone, phoneInvite, phoneMessage, SecTestnet } from './testnet.ts';

const K = 3;
const N = 7;

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
  const find = (re: RegExp) => lines.map((l) => JSON.parse(l)).find((l) => re.test(l.msg));
  return { lines, logger, find };
}

type Node = AdapterNode | BootstrapServer;

/**
 * Every other node of the ring stops answering FETCHes that ask for one of `keys`, and the reader's own copies
 * are hidden (a node reads what it holds itself without a message), until `restore`.
 */
function silence(t: SecTestnet, reader: AdapterNode, keys: ReadonlySet<string>): () => void {
  const store = reader.ring.store;
  const get = store.get;
  store.get = (k: string) => (keys.has(k) ? undefined : get.call(store, k));
  const nodes: Node[] = [...t.adapters, ...t.bootstraps].filter((n) => n !== reader);
  const origs = nodes.map((n) => {
    const orig = (n as unknown as { onRequest(m: string, p: Payload, c: Caller): Payload }).onRequest.bind(n);
    n.endpoint.onRequest((m, p, c) => {
      const asked = m === METHOD.FETCH ? ((p as { keys?: unknown }).keys as string[] | undefined) : undefined;
      if (asked?.some((k) => keys.has(k))) return new Promise<Payload>(() => {});
      return orig(m, p, c);
    });
    return orig;
  });
  return () => {
    for (const [i, n] of nodes.entries()) n.endpoint.onRequest(origs[i]);
    store.get = get;
  };
}

/** Holders of piece i of `name` (every replica) serve `value` instead. */
function replacePiece(t: SecTestnet, name: string, i: number, value: Uint8Array): number {
  let n = 0;
  for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((b) => b.ring)]) {
    const rec = node.store.get(pieceKey(name, i));
    if (rec) {
      node.store.delete(rec.key);
      node.store.put({ ...rec, value });
      n++;
    }
  }
  return n;
}

describe('key read with too few pieces: 480 with Retry-After; refused or lying pieces: 403', () => {
  let t: SecTestnet;
  let A: AdapterNode;
  let alice: LocalUser;
  const log = capture();

  before(async () => {
    t = await SecTestnet.create(6, { k: K, n: N, logger: log.logger, seed: 17 });
    A = t.adapters[0];
    alice = await t.settle(A.ensureUser('alice'));
    for (const [j, name] of ['bob', 'dave'].entries()) {
      const B = t.adapters[j + 1];
      await t.settle(B.ensureUser(name));
      bindPhone(B, name, `sip:${name}@10.0.0.${j + 2}:5080`);
    }
  });
  after(() => t.close());

  it('maps only SHARING_NOT_ENOUGH_PIECES to a Retry-After', () => {
    const short = new OverlayError('SHARING_NOT_ENOUGH_PIECES', 'x');
    assert.equal(sipStatusOf(short), 480);
    assert.equal(sipRetryAfterOf(short), SIP_RETRY_AFTER_S.SHARING_NOT_ENOUGH_PIECES);
    assert.ok((sipRetryAfterOf(short) ?? 0) > 0);
    assert.equal(sipRetryAfterOf(new OverlayError('VERIFICATION_FAILED', 'x')), undefined);
    assert.equal(sipRetryAfterOf(new OverlayError('CALLEE_UNREACHABLE', 'x')), undefined);
    assert.equal(sipRetryAfterOf(new Error('x')), undefined);
  });

  it('holders of n-k+1 pieces silent: a call and a MESSAGE get 480 with Retry-After, the missing pieces logged; a call once they answer goes through', async () => {
    const gone = Array.from({ length: N - K + 1 }, (_, i) => i + 1);
    const restore = silence(t, A, new Set(gone.map((i) => pieceKey('bob', i))));
    log.lines.length = 0;
    let out: Awaited<ReturnType<typeof placeCall>>;
    let im: Awaited<ReturnType<typeof sendIm>>;
    try {
      out = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
      im = await t.settle(sendIm(A.messaging, phoneMessage('alice', 'bob', 'hello'), alice, 'bob'));
    } finally {
      restore();
    }
    // A MESSAGE meets the same read: the same transient answer, not stored (the key to seal it to is unknown).
    assert.ok(!im.ok, JSON.stringify(im));
    assert.equal(im.status, 480);
    assert.equal(im.retryAfterS, SIP_RETRY_AFTER_S.SHARING_NOT_ENOUGH_PIECES);
    assert.ok(!out.ok, `the call fails: ${JSON.stringify(out.ok ? out.callee.pieces : out)}`);
    assert.equal(out.status, 480, JSON.stringify(out));
    assert.equal(out.code, 'SHARING_NOT_ENOUGH_PIECES');
    assert.equal(out.retryAfterS, SIP_RETRY_AFTER_S.SHARING_NOT_ENOUGH_PIECES);
    assert.match(out.reason, /key of bob unavailable: pieces 1, 2, 3, 4, 5 did not answer/);
    const line = log.find(/key pieces of bob did not answer/);
    assert.ok(line, log.lines.join('\n'));
    assert.deepEqual(line.missingPieces, gone);
    assert.equal(log.find(/failing closed/), undefined, 'no verification failure is logged');
    // Transient indeed: with the holders back, the same call is verified.
    const again = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
    assert.ok(again.ok, again.ok ? '' : again.reason);
  });

  it('holders lying beyond correction: 403 naming the holders, no Retry-After', async () => {
    const forged = await forgedPieces(t, 'dave', N, K);
    // floor((n-k)/2) = 2 can be corrected; 3 pieces of another key (bootstrap-signed, as a replayed split) cannot.
    const lying = [1, 2, 3];
    for (const i of lying) {
      assert.ok(replacePiece(t, 'dave', i, forged[i - 1]) > 0, `piece ${i} held somewhere`);
    }
    log.lines.length = 0;
    const out = await t.settle(placeCall(A.caller, phoneInvite('alice', 'dave'), alice, 'dave'));
    assert.ok(!out.ok, 'the call fails');
    assert.equal(out.status, 403, JSON.stringify(out));
    assert.equal(out.code, 'VERIFICATION_FAILED');
    assert.equal(out.retryAfterS, undefined);
    assert.match(out.reason, /key pieces of dave disagree/);
    const line = log.find(/failing closed/);
    assert.ok(line, 'a log line reports the failure');
    for (const i of lying) assert.match(String(line.holders?.[i]), /@adapter-|@boot-/, `holder of piece ${i}`);
    assert.equal(log.find(/key pieces of dave did not answer/), undefined, 'not reported as missing');
  });

  it('pieces the validator refuses (bytes altered) beyond correction: 403, the refusing holders named', async () => {
    const C = t.adapters[3];
    await t.settle(C.ensureUser('frank'));
    bindPhone(C, 'frank', 'sip:frank@10.0.0.5:5080');
    for (let i = 1; i <= N - K + 1; i++) {
      for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((b) => b.ring)]) {
        const rec = node.store.get(pieceKey('frank', i));
        if (rec && rec.value instanceof Uint8Array) rec.value[12] ^= 0x5a;
      }
    }
    log.lines.length = 0;
    const out = await t.settle(placeCall(A.caller, phoneInvite('alice', 'frank'), alice, 'frank'));
    assert.ok(!out.ok && out.status === 403, JSON.stringify(out));
    assert.equal(out.retryAfterS, undefined);
    const line = log.find(/refused by the validator; failing closed/);
    assert.ok(line, log.lines.join('\n'));
    assert.deepEqual(line.suspectPieces, [1, 2, 3, 4, 5]);
    assert.ok(line.refusedPieces.length > 0, 'the refused pieces are named');
    for (const i of line.refusedPieces)
      assert.match(String(line.holders[i]), /@(adapter|boot)-\S+ \(/, `holder of ${i}`);
  });
});
