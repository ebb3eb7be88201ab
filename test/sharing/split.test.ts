import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combine } from 'shamir-secret-sharing';
import { isOverlayError } from '../../src/util/errors.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { choosePieceIndices, combineSeed } from '../../src/sharing/combine-seed.ts';
import { decodePiece, decodePieceAt, encodePiece, pieceCheck } from '../../src/sharing/piece.ts';
import { splitKey } from '../../src/sharing/split.ts';
import { MUL, INV, mul } from '../../src/sharing/gf256.ts';

function subsets(n: number, k: number): number[][] {
  const out: number[][] = [];
  const rec = (start: number, acc: number[]) => {
    if (acc.length === k) return void out.push([...acc]);
    for (let i = start; i < n; i++) rec(i + 1, [...acc, i]);
  };
  rec(0, []);
  return out;
}

describe('GF(256)', () => {
  it('matches the AES field: 0x57 * 0x83 = 0xc1 (FIPS 197 section 4.2) and every inverse', () => {
    assert.equal(mul(0x57, 0x83), 0xc1);
    assert.equal(mul(0x57, 0x13), 0xfe);
    for (let a = 1; a < 256; a++) assert.equal(MUL[(a << 8) | INV[a]], 1);
  });
});

describe('splitKey', () => {
  it('puts piece i at x = i, carries the digest, and any k pieces rebuild with the library combine', async () => {
    const secret = new Uint8Array(72).map((_, i) => (i * 37 + 11) & 0xff);
    const pieces = await splitKey(secret, 6, 3);
    assert.equal(pieces.length, 6);
    for (const [i, p] of pieces.entries()) {
      assert.equal(p.index, i + 1);
      assert.equal(p.data.length, 73);
      assert.equal(p.data[72], i + 1);
      assert.deepEqual(p.check, pieceCheck(secret));
    }
    for (const s of subsets(6, 3)) assert.deepEqual(await combine(s.map((i) => pieces[i].data)), secret);
    // k - 1 pieces interpolate to something else (with overwhelming probability).
    assert.notDeepEqual(await combine([pieces[0].data, pieces[1].data]), secret);
  });

  it('uses fresh randomness for each split', async () => {
    const secret = new Uint8Array(32).fill(7);
    const a = await splitKey(secret, 4, 2);
    const b = await splitKey(secret, 4, 2);
    assert.notDeepEqual(a[0].data, b[0].data);
  });

  it('refuses bad thresholds and sizes', async () => {
    for (const [n, k] of [
      [3, 4],
      [5, 1],
      [256, 3],
      [5.5, 2],
    ]) {
      await assert.rejects(splitKey(new Uint8Array(4), n, k), (e) => isOverlayError(e, 'BAD_CONFIG'));
    }
    await assert.rejects(splitKey(new Uint8Array(0), 4, 2), (e) => isOverlayError(e, 'BAD_CONFIG'));
  });
});

describe('piece encoding', () => {
  it('round-trips and refuses anything malformed without throwing', async () => {
    const pieces = await splitKey(new Uint8Array(40).fill(3), 5, 3);
    for (const p of pieces) {
      const d = decodePiece(encodePiece(p));
      assert.ok(d.ok);
      assert.deepEqual(d.value, p);
    }
    const good = encodePiece(pieces[1]);
    for (let cut = 0; cut < good.length; cut++) assert.equal(decodePiece(good.subarray(0, cut)).ok, false);
    assert.equal(decodePiece(new Uint8Array([0xff, 0x00])).ok, false);
    assert.equal(decodePiece(encodePiece({ ...pieces[1], index: 3 })).ok, false, 'x byte must equal the index');
    assert.equal(decodePiece(encodePiece({ ...pieces[1], check: new Uint8Array(31) })).ok, false);
    const rnd = new SeededRandom(5);
    for (let i = 0; i < 300; i++) decodePiece(rnd.bytes(rnd.int(120)));
    // decodePieceAt never fails and marks a wrong or unreadable value so it is named bad later.
    assert.deepEqual(decodePieceAt(2, good), pieces[1]);
    assert.equal(decodePieceAt(3, good).data.length, 0);
    assert.equal(decodePieceAt(2, new Uint8Array([1, 2, 3])).data.length, 0);
  });
});

describe('combineSeed (the seed scheme: k random pieces, no check)', () => {
  it('rebuilds from any k honest pieces', async () => {
    const secret = new Uint8Array(72).map((_, i) => i);
    const pieces = await splitKey(secret, 8, 3);
    const rnd = new SeededRandom(1);
    for (let t = 0; t < 20; t++) assert.deepEqual(await combineSeed(pieces, 3, rnd), secret);
    assert.deepEqual(await combineSeed(pieces.slice(2, 5), 3, rnd), secret);
  });

  it('returns a wrong key silently when a chosen piece is corrupted (the weakness robust mode fixes)', async () => {
    const secret = new Uint8Array(16).fill(9);
    const pieces = await splitKey(secret, 4, 3);
    pieces[0].data[0] ^= 1;
    const out = await combineSeed(pieces.slice(0, 3), 3, new SeededRandom(2));
    assert.notDeepEqual(out, secret);
  });

  it('refuses too few pieces', async () => {
    const pieces = await splitKey(new Uint8Array(8), 5, 3);
    await assert.rejects(combineSeed(pieces.slice(0, 2), 3, new SeededRandom(1)), (e) =>
      isOverlayError(e, 'SHARING_NOT_ENOUGH_PIECES'),
    );
  });

  it('chooses k distinct indices in 1..n', () => {
    const rnd = new SeededRandom(3);
    for (let t = 0; t < 50; t++) {
      const idx = choosePieceIndices(10, 6, rnd);
      assert.equal(new Set(idx).size, 6);
      assert.ok(idx.every((i) => i >= 1 && i <= 10));
    }
  });
});
