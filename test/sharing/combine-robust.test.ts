import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combineRobust } from '../../src/sharing/combine-robust.ts';
import { dot, lagrangeWeights } from '../../src/sharing/gf256.ts';
import { type PubKeyPiece, pieceCheck } from '../../src/sharing/piece.ts';
import { splitKey } from '../../src/sharing/split.ts';
import { isOverlayError, type OverlayError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';

type Style = 'random' | 'fake-poly' | 'fake-poly-fake-digest';
const STYLES: Style[] = ['random', 'fake-poly', 'fake-poly-fake-digest'];
const CONFIGS = [
  [3, 8],
  [4, 8],
  [6, 10],
  [9, 10],
] as const;

function clone(ps: PubKeyPiece[]): PubKeyPiece[] {
  return ps.map((p) => ({ index: p.index, data: Uint8Array.from(p.data), check: Uint8Array.from(p.check) }));
}

function allSubsets(n: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << n; mask++) {
    const s: number[] = [];
    for (let i = 0; i < n; i++) if (mask & (1 << i)) s.push(i + 1);
    out.push(s);
  }
  return out;
}

/**
 * Corrupt the pieces at `bad`. 'random' flips random bytes. The fake-poly
 * styles are the adversary's best move: a polynomial of degree < k through
 * k - 1 honest pieces with a chosen fake secret at 0, written into every bad
 * piece, so the bad pieces agree with each other and with k - 1 good ones;
 * the last style also gives them the digest of the fake secret.
 */
function corrupt(pieces: PubKeyPiece[], bad: number[], k: number, style: Style, rnd: SeededRandom): Uint8Array {
  const len = pieces[0].data.length - 1;
  const fake = rnd.bytes(len);
  if (style === 'random') {
    for (const i of bad) {
      const d = pieces[i - 1].data;
      const pos = rnd.int(len);
      d[pos] ^= 1 + rnd.int(255);
      for (let b = 0; b < len; b++) if (rnd.next() < 0.3) d[b] = rnd.int(256);
    }
    return fake;
  }
  const badSet = new Set(bad);
  const anchors = pieces.filter((p) => !badSet.has(p.index)).slice(0, k - 1);
  const xs = Uint8Array.from([0, ...anchors.map((p) => p.index)]);
  for (const i of bad) {
    const w = lagrangeWeights(xs, i);
    const d = pieces[i - 1].data;
    for (let b = 0; b < len; b++) d[b] = dot(w, [fake[b], ...anchors.map((p) => p.data[b])]);
    if (style === 'fake-poly-fake-digest') pieces[i - 1].check = pieceCheck(fake);
  }
  return fake;
}

describe('combineRobust', () => {
  for (const [k, n] of CONFIGS) {
    const t = Math.floor((n - k) / 2);
    it(`k=${k} n=${n}: every pattern of up to ${t} bad pieces (3 styles) is corrected and named exactly`, async () => {
      const rnd = new SeededRandom(1000 + k * 31 + n);
      const secret = rnd.bytes(72);
      const honest = await splitKey(secret, n, k);
      let patterns = 0;
      for (const bad of allSubsets(n).filter((s) => s.length <= t)) {
        for (const style of STYLES) {
          const pieces = clone(honest);
          corrupt(pieces, bad, k, style, rnd);
          const r = combineRobust(pieces, n, k);
          assert.deepEqual(r.secret, secret, `bad=${bad} style=${style}`);
          assert.deepEqual(r.bad, bad, `bad=${bad} style=${style}`);
          assert.deepEqual(r.missing, []);
          patterns++;
        }
      }
      assert.ok(patterns >= 3);
    });

    it(`k=${k} n=${n}: missing pieces count against the budget (2*bad + missing <= n-k is corrected)`, async () => {
      const rnd = new SeededRandom(2000 + k * 31 + n);
      const secret = rnd.bytes(40);
      const honest = await splitKey(secret, n, k);
      for (const gone of allSubsets(n).filter((s) => s.length <= n - k)) {
        const present = honest.filter((p) => !gone.includes(p.index)).map((p) => p.index);
        const budget = Math.floor((present.length - k) / 2);
        for (let trial = 0; trial < 2; trial++) {
          const bad = present.filter(() => rnd.next() < 0.5).slice(0, budget);
          const pieces = clone(honest);
          corrupt(pieces, bad, k, STYLES[trial + 1], rnd);
          const r = combineRobust(
            pieces.filter((p) => !gone.includes(p.index)),
            n,
            k,
          );
          assert.deepEqual(r.secret, secret);
          assert.deepEqual(r.bad, bad);
          assert.deepEqual(r.missing, gone);
        }
      }
    });

    it(`k=${k} n=${n}: with more bad pieces the answer is the right key or an error, never a wrong key`, async () => {
      const rnd = new SeededRandom(3000 + k * 31 + n);
      const secret = rnd.bytes(48);
      const honest = await splitKey(secret, n, k);
      const need = Math.ceil((n + k) / 2);
      let errors = 0;
      // Every pattern, each with one style in turn (all three styles per pattern would only repeat the search).
      for (const [p, bad] of allSubsets(n)
        .filter((s) => s.length > t && s.length < need)
        .entries()) {
        for (const style of [STYLES[p % 3]]) {
          const pieces = clone(honest);
          corrupt(pieces, bad, k, style, rnd);
          let out: Uint8Array | undefined;
          try {
            out = combineRobust(pieces, n, k).secret;
          } catch (e) {
            assert.ok(isOverlayError(e, 'SHARING_PIECES_DISAGREE'), String(e));
            const detail = (e as OverlayError).detail as { disagreeing: number[] };
            assert.ok(detail.disagreeing.length > 0, 'error names disagreeing pieces');
            // With more than k honest pieces left, they are the largest consistent group: exactly the bad ones are named.
            if (style === 'random' && n - bad.length > k) assert.deepEqual(detail.disagreeing, bad);
            errors++;
            continue;
          }
          assert.deepEqual(out, secret, `wrong key returned for bad=${bad} style=${style}`);
        }
      }
      assert.ok(errors > 0);
    });
  }

  it('the limit: a group of ceil((m+k)/2) forging holders with their own digest is indistinguishable from an honest split', async () => {
    const rnd = new SeededRandom(7);
    const [k, n] = [3, 8];
    const honest = await splitKey(rnd.bytes(32), n, k);
    const bad = [1, 2, 3, 4, 5, 6]; // ceil((8+3)/2) = 6
    const pieces = clone(honest);
    const fake = corrupt(pieces, bad, k, 'fake-poly-fake-digest', rnd);
    const r = combineRobust(pieces, n, k);
    assert.deepEqual(r.secret, fake);
    assert.deepEqual(r.bad, [7, 8]);
  });

  it('names malformed, conflicting and out-of-place pieces as bad and treats them as erasures', async () => {
    const rnd = new SeededRandom(8);
    const secret = rnd.bytes(72);
    const honest = await splitKey(secret, 10, 4);
    const pieces = clone(honest);
    pieces[0].data = pieces[0].data.subarray(0, 10); // truncated: wrong x byte
    pieces[1].check = new Uint8Array(5);
    pieces[2] = { ...pieces[2], data: Uint8Array.from(honest[3].data) }; // piece 4's value under key 3
    const conflicting = { ...pieces[4], data: Uint8Array.from(pieces[4].data) };
    conflicting.data[0] ^= 1;
    const r = combineRobust(
      [...pieces, conflicting, { index: 0, data: new Uint8Array(3), check: new Uint8Array(32) }],
      10,
      4,
    );
    assert.deepEqual(r.secret, secret);
    assert.deepEqual(r.bad, [1, 2, 3, 5]);
    // 4 erasures: 6 well-formed pieces remain, need ceil((6+4)/2) = 5, one more error correctable.
    pieces[6].data[3] ^= 0x40;
    const r2 = combineRobust([...pieces, conflicting], 10, 4);
    assert.deepEqual(r2.secret, secret);
    assert.deepEqual(r2.bad, [1, 2, 3, 5, 7]);
  });

  it('refuses too few usable pieces with SHARING_NOT_ENOUGH_PIECES', async () => {
    const honest = await splitKey(new Uint8Array(8).fill(1), 8, 3);
    assert.throws(
      () => combineRobust(honest.slice(0, 2), 8, 3),
      (e) => isOverlayError(e, 'SHARING_NOT_ENOUGH_PIECES'),
    );
  });

  it('survives arbitrary garbage input without throwing anything but OverlayError', async () => {
    const rnd = new SeededRandom(9);
    const honest = await splitKey(rnd.bytes(20), 6, 3);
    for (let trial = 0; trial < 300; trial++) {
      const pieces = clone(honest).map((p) => {
        const roll = rnd.next();
        if (roll < 0.2) return { index: p.index, data: rnd.bytes(rnd.int(30)), check: rnd.bytes(rnd.int(40)) };
        if (roll < 0.3) return { index: rnd.int(300) - 20, data: p.data, check: p.check };
        if (roll < 0.35) return null as unknown as PubKeyPiece;
        return p;
      });
      try {
        combineRobust(pieces, 6, 3);
      } catch (e) {
        assert.ok(isOverlayError(e), String(e));
      }
    }
  });
});

describe('combineRobust, random parameters', () => {
  it('for random k, n, secret sizes and damage: corrected within the budget, right-or-error beyond it', async () => {
    const rnd = new SeededRandom(77);
    for (let trial = 0; trial < 150; trial++) {
      const n = 2 + rnd.int(19);
      const k = 2 + rnd.int(n - 1);
      const secret = rnd.bytes(1 + rnd.int(300));
      const honest = await splitKey(secret, n, k);
      const present = honest.filter(() => rnd.next() < 0.85);
      const m = present.length;
      const budget = m >= k ? Math.floor((m - k) / 2) : -1;
      const count = rnd.int(m + 1);
      const bad = [...present]
        .sort(() => rnd.next() - 0.5)
        .slice(0, count)
        .map((p) => p.index)
        .sort((a, b) => a - b);
      const pieces = clone(honest);
      corrupt(pieces, bad, k, STYLES[trial % 3], rnd);
      const given = pieces.filter((p) => present.some((q) => q.index === p.index));
      try {
        const r = combineRobust(given, n, k);
        if (count <= budget) assert.deepEqual(r.bad, bad);
        const forgers = Math.ceil((m + k) / 2);
        if (count < forgers) assert.deepEqual(r.secret, secret, `n=${n} k=${k} m=${m} bad=${bad}`);
      } catch (e) {
        assert.ok(count > budget, `n=${n} k=${k} m=${m} bad=${bad}: ${String(e)}`);
        assert.ok(isOverlayError(e, 'SHARING_PIECES_DISAGREE') || isOverlayError(e, 'SHARING_NOT_ENOUGH_PIECES'));
      }
    }
  });
});
