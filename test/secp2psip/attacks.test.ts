import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { sipStatusOf } from '../../src/sip/error-status.ts';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import type { RegisteredPhones } from '../../src/secp2psip/local-phones.ts';
import { exchange } from '../../src/secp2psip/adapter-node.ts';
import type { LocalUser } from '../../src/secp2psip/call-common.ts';
import { placeCall } from '../../src/secp2psip/caller.ts';
import {
  callTbs,
  DOMAIN,
  decodeMessage,
  encodeMessage,
  type InviteMsg,
  type RedirectMsg,
} from '../../src/secp2psip/messages.ts';
import { pieceKey } from '../../src/secp2psip/ring-records.ts';
import { coveringKeys } from '../../src/secp2psip/ring-fetch.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { UserSigner } from '../../src/identity/user-key.ts';
import { Identity } from '../../src/identity/identity.ts';
import type { Caller, Payload } from '../../src/rpc/types.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { nodeIdFromKey } from '../../src/identity/fingerprint.ts';
import { METHOD } from '../../src/dht/chord/messages.ts';
import { bootstrapRef, requestAdmission } from '../../src/secp2psip/adapter-node.ts';
import { forgedPieces } from './forged-pieces.ts';
import { bindPhone, phoneInvite, SecTestnet } from './testnet.ts';
import { generateKeyPairSync } from 'node:crypto';
import { answerInvite, type CalleeContext } from '../../src/secp2psip/callee.ts';
import { sealFor } from '../../src/secp2psip/call-common.ts';
import { ReplayCache } from '../../src/identity/replay-cache.ts';
import { SimClock } from '../../src/util/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { silentLogger } from '../../src/util/log.ts';
import { OverlayError } from '../../src/util/errors.ts';
import type { VerifiedUsers } from '../../src/secp2psip/verified-users.ts';
import { seal } from '../../src/identity/seal.ts';

const K = 3;
const N = 7; // floor((N-K)/2) = 2 bad pieces can be corrected

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
  return { lines, logger };
}

/** Wrap an adapter's RPC handler so a test can look at or change SECP2PSIP answers. */
function tapAnswers(a: AdapterNode, tamper: (answer: Uint8Array) => Uint8Array): void {
  const orig = (a as unknown as { onRequest(m: string, p: Payload, c: Caller): Payload }).onRequest.bind(a);
  a.endpoint.onRequest(async (m, p, c) => {
    const r = await orig(m, p, c);
    return m === 'secp2psip' ? tamper(r as Uint8Array) : r;
  });
}

function signedInvite(user: { name: string; signer: UserSigner }, to: string, t: SecTestnet, ageMs = 0): InviteMsg {
  const req = phoneInvite(user.name, to);
  const body: Omit<InviteMsg, 'sig'> = {
    t: 'INVITE',
    name: user.name,
    to,
    callId: req.headers.find((h) => h.name === 'Call-ID')?.value ?? '',
    nonce: t.random.bytes(16),
    ts: t.clock.wallNow() - ageMs,
    sip: new Uint8Array(serialize(req)),
  };
  return { ...body, sig: user.signer.sign(DOMAIN.invite, callTbs(body)) };
}

describe('SecP2PSIP attacks (in-memory ring)', () => {
  let t: SecTestnet;
  let alice: LocalUser;
  let A: AdapterNode<RegisteredPhones>;
  let B: AdapterNode<RegisteredPhones>;
  const log = capture();

  before(async () => {
    t = await SecTestnet.create(8, { k: K, n: N, logger: log.logger, seed: 5 });
    [A, B] = t.adapters;
    alice = await t.settle(A.ensureUser('alice'));
    await t.settle(B.ensureUser('bob'));
    bindPhone(B, 'bob', 'sip:bob@10.0.0.2:5080');
  });
  after(() => t.close());

  it('refuses a second registration of bob with another key, with a clear reason', async () => {
    const C = t.adapters[2];
    await assert.rejects(t.settle(C.registerUser('bob')), (e) => {
      assert.ok(isOverlayError(e, 'USER_NAME_TAKEN'));
      assert.match(e.message, /'bob' is already registered with another key/);
      return true;
    });
    const ok = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
    assert.ok(ok.ok, 'bob is still bob');
  });

  it('answers an INVITE signed with the wrong key with 403 and no REDIRECT', async () => {
    const mallory = UserSigner.fromIdentity(Identity.generate());
    const forged = signedInvite({ name: 'alice', signer: mallory }, 'bob', t);
    const answer = await t.settle(exchange(A.endpoint, B.endpoint.self, encodeMessage(forged)).catch((e) => e));
    assert.ok(isOverlayError(answer, 'IDENTITY_BAD_SIGNATURE'), String(answer));
    assert.equal(sipStatusOf(answer), 403);
  });

  it('refuses a replayed INVITE', async () => {
    const inv = signedInvite({ name: 'alice', signer: alice.signer }, 'bob', t);
    const first = await t.settle(exchange(A.endpoint, B.endpoint.self, encodeMessage(inv)));
    assert.equal(first.t, 'REDIRECT');
    const again = await t.settle(exchange(A.endpoint, B.endpoint.self, encodeMessage(inv)).catch((e) => e));
    assert.ok(isOverlayError(again, 'IDENTITY_REPLAY'), String(again));
    // The same INVITE replayed to another adapter is refused too (bob is not there).
    const elsewhere = await t.settle(
      exchange(A.endpoint, t.adapters[3].endpoint.self, encodeMessage(inv)).catch((e) => e),
    );
    assert.ok(isOverlayError(elsewhere, 'USER_UNKNOWN'), String(elsewhere));
    // Stale: the same message an hour later fails the window even on a fresh cache.
    const old = signedInvite({ name: 'alice', signer: alice.signer }, 'bob', t, 3600_000);
    const late = await t.settle(exchange(A.endpoint, B.endpoint.self, encodeMessage(old)).catch((e) => e));
    assert.ok(isOverlayError(late, 'IDENTITY_STALE'), String(late));
  });

  it('refuses a replayed REDIRECT (it answers another INVITE)', async () => {
    let captured: Uint8Array | undefined;
    tapAnswers(B, (r) => {
      if (!captured) captured = r;
      return captured;
    });
    const first = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
    assert.ok(first.ok);
    const second = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
    assert.equal(second.ok, false);
    assert.ok(!second.ok && second.status === 403, JSON.stringify(second));
    tapAnswers(B, (r) => r);
  });

  it('never turns a REDIRECT altered in transit into a 302', async () => {
    tapAnswers(B, (r) => {
      const d = decodeMessage(r);
      if (!d.ok || d.value.t !== 'REDIRECT') return r;
      const text = new TextDecoder().decode(d.value.sip).replace('10.0.0.2:5080', '6.6.6.6:5060');
      const evil: RedirectMsg = { ...d.value, sip: new TextEncoder().encode(text) };
      return encodeMessage(evil);
    });
    const out = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
    assert.equal(out.ok, false);
    assert.ok(!out.ok && out.status === 403 && /not signed by bob/.test(out.reason), JSON.stringify(out));
    tapAnswers(B, (r) => r);
  });

  /** Holders of piece i of `name` (every replica) change what they serve. */
  function tamperPiece(name: string, i: number, replace: (v: Uint8Array) => Uint8Array | undefined): number {
    let n = 0;
    for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((b) => b.ring)]) {
      const rec = node.store.get(pieceKey(name, i));
      if (rec && rec.value instanceof Uint8Array) {
        const v = replace(rec.value);
        if (v) {
          node.store.delete(rec.key);
          node.store.put({ ...rec, value: v });
        }
        n++;
      }
    }
    return n;
  }

  /**
   * A new adapter with user `name`, calling `callee`; `before(E)` runs just before the call (nothing runs in
   * between: it sees the ring view the call's first read plans from).
   */
  async function freshCaller(
    name: string,
    callee: string,
    before?: (E: AdapterNode) => void,
  ): Promise<ReturnType<typeof placeCall>> {
    const E = await t.addAdapter();
    await t.run(1000);
    const u = await t.settle(E.ensureUser(name));
    before?.(E);
    return t.settle(placeCall(E.caller, phoneInvite(name, callee), u, callee));
  }

  /** The piece numbers of `name` that E's first read takes (key-lookup.ts firstRead). */
  const firstPieces = (E: AdapterNode, name: string) =>
    coveringKeys(
      E.ring,
      name,
      Array.from({ length: N }, (_, i) => pieceKey(name, i + 1)),
      K,
    )
      .slice(1)
      .map((k) => Number(k.slice(name.length + 1)));

  it('corrects floor((n-k)/2) holders serving pieces of another key; fails closed beyond and names them', async () => {
    const D = t.adapters[5];
    await t.settle(D.ensureUser('dave'));
    bindPhone(D, 'dave', 'sip:dave@10.0.0.4:5080');
    const forged = await forgedPieces(t, 'dave', N, K);
    // Two of the pieces the caller's first read takes: that read cannot stand, every piece is read and corrected.
    let two: number[] = [];
    const fine = await freshCaller('carol', 'dave', (E) => {
      two = firstPieces(E, 'dave').slice(0, 2);
      for (const i of two) assert.ok(tamperPiece('dave', i, () => forged[i - 1]) > 0);
    });
    assert.ok(fine.ok, fine.ok ? '' : fine.reason);
    assert.deepEqual(fine.callee.pieces.bad, two);
    assert.equal(fine.callee.pieces.used, N);
    // Which ring node sent each corrected piece (the per-holder metric and the dashboard show it).
    for (const i of two) assert.match(String(fine.callee.pieces.holders?.[i]), /@adapter-|@boot-/, `holder of ${i}`);
    assert.ok(fine.trace.inviteSentMs !== undefined && fine.trace.verifiedMs !== undefined, 'the steps are timed');
    const three = [...two];
    log.lines.length = 0;
    const bad = await freshCaller('erin', 'dave', (E) => {
      const third = [...firstPieces(E, 'dave'), ...Array.from({ length: N }, (_, i) => i + 1)].find(
        (i) => !two.includes(i),
      ) as number;
      three.push(third);
      tamperPiece('dave', third, () => forged[third - 1]);
    });
    assert.ok(!bad.ok && bad.status === 403, JSON.stringify(bad));
    const line = log.lines.map((l) => JSON.parse(l)).find((l) => /failing closed/.test(l.msg));
    assert.ok(line, 'a log line reports the failure');
    for (const i of three) assert.match(String(line.holders?.[i]), /@adapter-|@boot-/, `holder of piece ${i}`);
  });

  it('drops pieces whose bytes were altered (bootstrap write signature), fails closed when fewer than k remain', async () => {
    const F = t.adapters[6];
    await t.settle(F.ensureUser('frank'));
    bindPhone(F, 'frank', 'sip:frank@10.0.0.6:5080');
    const flip = (v: Uint8Array) => {
      const c = Uint8Array.from(v);
      c[12] ^= 0x5a;
      return c;
    };
    // Altered records no longer pass any node's validator; serve them by writing around it.
    const corrupt = (i: number) => {
      for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((b) => b.ring)]) {
        const rec = node.store.get(pieceKey('frank', i));
        if (rec && rec.value instanceof Uint8Array) rec.value.set(flip(rec.value));
      }
    };
    for (let i = 1; i <= N - K; i++) corrupt(i);
    const fine = await freshCaller('gina', 'frank');
    assert.ok(fine.ok, fine.ok ? '' : fine.reason);
    corrupt(N - K + 1);
    log.lines.length = 0;
    const bad = await freshCaller('hank', 'frank');
    assert.ok(!bad.ok && bad.status === 403, JSON.stringify(bad));
    const line = log.lines.map((l) => JSON.parse(l)).find((l) => /failing closed/.test(l.msg));
    assert.deepEqual(line?.suspectPieces, [1, 2, 3, 4, 5]);
  });
});

describe('SecP2PSIP admission attacks (in-memory ring)', () => {
  let t: SecTestnet;
  before(async () => {
    t = await SecTestnet.create(2, { k: 2, n: 3, seed: 11 });
    await t.settle(t.adapters[0].ensureUser('carol'));
  });
  after(() => t.close());

  /** A node that proved its key but was never admitted: its HELLO carries a self-certified id. */
  function stranger(tag: string) {
    const id = Identity.generate();
    const ref = { id: nodeIdFromKey(id.bundle.sig), addr: `stranger-${tag}`, key: id.bundle.sig };
    return { id, ep: t.net.endpoint(ref) };
  }

  it('serves a node that is not admitted nothing but ADMIT (no ring RPC, no WHOIS, no REGISTER)', async () => {
    const { ep } = stranger('a');
    const boot = bootstrapRef(t.info[0]);
    const refusedBefore = t.boot.stats.refused;
    for (const [method, payload] of [
      [METHOD.PING, {}],
      [METHOD.FIND, { target: '00'.repeat(20) }],
      [METHOD.FETCH, { keys: ['carol'] }],
      [METHOD.STORE, { records: [] }],
      [METHOD.FINGERS, {}],
    ] as const) {
      await assert.rejects(
        t.settle(ep.request(boot, method, payload)),
        (e) => isOverlayError(e, 'RPC_REFUSED'),
        method,
      );
    }
    await assert.rejects(t.settle(exchange(ep, boot, encodeMessage({ t: 'WHOIS', name: 'carol' }))), (e) =>
      isOverlayError(e, 'RPC_REFUSED'),
    );
    assert.equal(t.boot.stats.refused, refusedBefore + 6);
    const admitted = await t.settle(requestAdmission(ep, t.info[0]));
    assert.equal(admitted.t, 'ADMITTED');
    await ep.close();
  });

  it('gives a node key one ring id, whatever how often it asks; floods are cut by the per-key limit', async () => {
    const { ep } = stranger('b');
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) ids.add((await t.settle(requestAdmission(ep, t.info[0]))).nodeId);
    assert.equal(ids.size, 1);
    const limited = t.boot.stats.admitLimited;
    await assert.rejects(t.settle(requestAdmission(ep, t.info[0])), (e) => isOverlayError(e, 'RPC_TOO_MANY_IN_FLIGHT'));
    assert.equal(t.boot.stats.admitLimited, limited + 1);
    await t.run(61_000); // one token back
    assert.ok(ids.has((await t.settle(requestAdmission(ep, t.info[0]))).nodeId));
    await ep.close();
  });

  it('cuts a flood of admissions of fresh keys from one address, but not other addresses', () => {
    const limited = t.boot.stats.admitLimited;
    let ok = 0;
    for (let i = 0; i < 200; i++) {
      try {
        t.boot.admit(Identity.generate().bundle.sig, '192.0.2.7:40000');
        ok++;
      } catch (e) {
        assert.ok(isOverlayError(e, 'RPC_TOO_MANY_IN_FLIGHT'));
      }
    }
    assert.equal(ok, 64);
    assert.equal(t.boot.stats.admitLimited, limited + 136);
    assert.equal(t.boot.admit(Identity.generate().bundle.sig, '192.0.2.8:40000').t, 'ADMITTED');
  });

  it('gives a node key the same ring id at every bootstrap of a set (its ring-id authority mints it)', async () => {
    const m = await SecTestnet.create(0, { k: 2, n: 3, seed: 12, bootstraps: 3 });
    try {
      for (let round = 0; round < 4; round++) {
        const id = Identity.generate();
        const ep = m.net.endpoint({ id: nodeIdFromKey(id.bundle.sig), addr: `multi-${round}`, key: id.bundle.sig });
        const ids = new Set<string>();
        for (const b of m.info) ids.add((await m.settle(requestAdmission(ep, b))).nodeId);
        assert.equal(ids.size, 1, 'one id from all three bootstraps');
        await ep.close();
      }
      assert.ok(m.bootstraps.some((b) => b.stats.admitForwarded > 0));
      // A node cannot ask for another key's admission by forging a forwarded ADMIT.
      const { ep } = stranger('forger');
      const forged = encodeMessage({ t: 'ADMIT', nodeKey: Identity.generate().bundle.sig });
      await assert.rejects(t.settle(exchange(ep, bootstrapRef(t.info[0]), forged)), (e) =>
        isOverlayError(e, 'RPC_REFUSED'),
      );
      await ep.close();
    } finally {
      m.close();
    }
  });

  it('derives the ring id from the key with a secret: stable, and not computable from the key alone', async () => {
    const key = Identity.generate().bundle.sig;
    const id1 = t.boot.ringIdFor(key);
    assert.equal(t.boot.ringIdFor(key), id1);
    assert.notEqual(id1, nodeIdFromKey(key));
    assert.equal(t.boot.admit(key, 'x:1').nodeId, id1);
  });
});

describe('SecP2PSIP callee: cheap checks before costly ones', () => {
  const clock = new SimClock(0);
  const random = new SeededRandom(3);
  let kemUses = 0;
  let lookups = 0;
  /** A local user whose private sealing key counts how often it is used. */
  function localUser(name: string): LocalUser {
    const kem = Identity.generate();
    const signer = UserSigner.fromPrivateKey(generateKeyPairSync('ed25519').privateKey);
    const counted = new Proxy(kem, {
      get(target, prop, recv) {
        if (prop === 'kemKey') kemUses++;
        return Reflect.get(target, prop, recv);
      },
    });
    return {
      name,
      signer,
      kem: counted,
      bundle: { name, signKey: new Uint8Array(32), sealKey: kem.bundle.kem, registeredAt: 0 },
    };
  }
  const refuseLookup = async (name: string) => {
    lookups++;
    throw new OverlayError('USER_UNKNOWN', `${name} is not registered`);
  };
  const users = new Map<string, LocalUser>();
  for (let i = 0; i < 200; i++) users.set(`u${i}`, localUser(`u${i}`));
  const ctx: CalleeContext = {
    users,
    phones: { contactsOf: () => ['<sip:u7@10.0.0.7:5060>'] },
    verified: {
      verify: refuseLookup,
      verifySigned: refuseLookup,
    } as unknown as VerifiedUsers,
    replay: new ReplayCache({ clock }),
    clock,
    log: silentLogger,
    mode: 'protected',
  };
  const mallory = {
    name: 'nobody',
    signer: UserSigner.fromPrivateKey(generateKeyPairSync('ed25519').privateKey),
  };
  const net = { clock, random } as unknown as SecTestnet;
  const from = { key: new Uint8Array(32), addr: 'x:1' };
  const code = (raw: Uint8Array) => {
    const d = decodeMessage(raw);
    return d.ok && d.value.t === 'ERROR' ? d.value.code : d.ok ? d.value.t : 'undecodable';
  };

  it('opens a sealed INVITE with the one key its hint names, not with every local user', async () => {
    kemUses = 0;
    const inv = signedInvite(mallory, 'u7', net);
    const out = await answerInvite(ctx, sealFor(users.get('u7')?.bundle.sealKey as Uint8Array, inv), from);
    assert.equal(kemUses, 1);
    assert.equal(code(out), 'USER_UNKNOWN'); // opened, then the (stubbed) lookup of the caller refused it
  });

  it('refuses a sealed INVITE without a hint (or with a wrong one) without trying any key', async () => {
    kemUses = 0;
    const sealKey = users.get('u7')?.bundle.sealKey as Uint8Array;
    const bare = encodeMessage({ t: 'SEALED', box: seal(sealKey, encodeMessage(signedInvite(mallory, 'u7', net))) });
    assert.equal(code(await answerInvite(ctx, bare, from)), 'RPC_MALFORMED');
    const wrong = encodeMessage({
      t: 'SEALED',
      box: seal(sealKey, encodeMessage(signedInvite(mallory, 'u7', net))),
      hint: new Uint8Array(8),
    });
    assert.equal(code(await answerInvite(ctx, wrong, from)), 'RPC_MALFORMED');
    assert.equal(kemUses, 0);
  });

  it('refuses stale, replayed and inconsistent INVITEs before any ring lookup of the caller', async () => {
    lookups = 0;
    const stale = signedInvite(mallory, 'u7', net, 120_000);
    assert.equal(code(await answerInvite(ctx, encodeMessage(stale), from)), 'IDENTITY_STALE');
    const seen = signedInvite(mallory, 'u7', net);
    ctx.replay.check(seen.nonce, seen.ts, 'invite:nobody'); // as if an earlier copy had been verified
    assert.equal(code(await answerInvite(ctx, encodeMessage(seen), from)), 'IDENTITY_REPLAY');
    const odd = { ...signedInvite(mallory, 'u7', net), callId: 'not-the-sip-call-id' };
    assert.equal(code(await answerInvite(ctx, encodeMessage(odd), from)), 'VERIFICATION_FAILED');
    const unknownCallee = signedInvite(mallory, 'nobody-here', net);
    assert.equal(code(await answerInvite(ctx, encodeMessage(unknownCallee), from)), 'USER_UNKNOWN');
    assert.equal(lookups, 0);
    // A fresh, consistent INVITE is what costs a lookup.
    assert.equal(code(await answerInvite(ctx, encodeMessage(signedInvite(mallory, 'u7', net)), from)), 'USER_UNKNOWN');
    assert.equal(lookups, 1);
  });
});
