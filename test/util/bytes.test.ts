import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { bytesEqual } from '../../src/util/bytes.ts';

test('bytesEqual compares exactly the bytes of each view, short and long, Buffer or Uint8Array', () => {
  for (const n of [0, 1, 31, 32, 47, 48, 49, 64, 400, 4096]) {
    const raw = randomBytes(n + 16);
    // Views at different offsets of different ArrayBuffers, with other bytes around them.
    const a = new Uint8Array(raw.buffer, raw.byteOffset + 3, n);
    const backing = new Uint8Array(n + 9).fill(0xee);
    backing.set(a, 5);
    const b = backing.subarray(5, 5 + n);
    assert.equal(bytesEqual(a, b), true, `equal views of ${n}`);
    assert.equal(bytesEqual(b, a), true);
    assert.equal(bytesEqual(Buffer.from(a), b), true, `Buffer against view of ${n}`);
    assert.equal(bytesEqual(a, a), true);
    if (n === 0) continue;
    for (const at of [0, n >> 1, n - 1]) {
      const c = new Uint8Array(b);
      c[at] ^= 1;
      assert.equal(bytesEqual(a, c), false, `one bit at ${at} of ${n}`);
      assert.equal(bytesEqual(c, a), false);
    }
    assert.equal(bytesEqual(a, b.subarray(0, n - 1)), false, `shorter by one, ${n}`);
    // Same bytes followed by more in the ArrayBuffer: only the view counts.
    assert.equal(bytesEqual(raw.subarray(3, 3 + n), new Uint8Array(raw.buffer, raw.byteOffset + 3, n)), true);
  }
});
