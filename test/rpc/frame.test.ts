import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFrame, FrameDecoder } from '../../src/rpc/frame.ts';
import { SeededRandom } from '../../src/util/random.ts';

function collect(dec: FrameDecoder, chunks: Uint8Array[]) {
  const out: string[] = [];
  let err: string | null = null;
  for (const c of chunks) {
    err = dec.push(c, (b) => out.push(Buffer.from(b).toString('hex')));
    if (err) break;
  }
  return { out, err };
}

test('frames split at every possible byte boundary are reassembled in order', () => {
  const bodies = [Buffer.from('a'), Buffer.from('hello world'), Buffer.alloc(300, 0x5a)];
  const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
  const want = bodies.map((b) => b.toString('hex'));
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = collect(new FrameDecoder(), [stream.subarray(0, cut), stream.subarray(cut)]);
    assert.deepEqual(r, { out: want, err: null });
  }
  const oneByOne = collect(
    new FrameDecoder(),
    [...stream].map((x) => Uint8Array.of(x)),
  );
  assert.deepEqual(oneByOne, { out: want, err: null });
});

test('random chunking never changes the frames', () => {
  const rnd = new SeededRandom(99);
  const bodies = Array.from({ length: 200 }, (_, i) => Buffer.from(rnd.bytes(1 + rnd.int(i % 10 === 0 ? 5000 : 50))));
  const stream = Buffer.concat(bodies.map((b) => encodeFrame(b)));
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; ) {
    const n = 1 + rnd.int(700);
    chunks.push(stream.subarray(off, off + n));
    off += n;
  }
  const r = collect(new FrameDecoder(), chunks);
  assert.equal(r.err, null);
  assert.deepEqual(
    r.out,
    bodies.map((b) => b.toString('hex')),
  );
});

test('oversized and empty lengths break the stream for good', () => {
  const dec = new FrameDecoder(1024);
  const ok = encodeFrame(Buffer.alloc(1024, 1));
  const big = encodeFrame(Buffer.alloc(1025, 1));
  const r = collect(dec, [ok, big, ok]);
  assert.equal(r.out.length, 1);
  assert.equal(r.err, 'oversized');
  assert.equal(
    dec.push(ok, () => assert.fail('no frames after an error')),
    'oversized',
  );
  const dec2 = new FrameDecoder();
  assert.equal(
    dec2.push(Buffer.from([0, 0, 0, 0]), () => {}),
    'empty',
  );
  // A huge announced length is refused from the header alone, before any body arrives.
  assert.equal(
    new FrameDecoder().push(Buffer.from([0xff, 0xff, 0xff, 0xff]), () => {}),
    'oversized',
  );
});

test('partialBytes reports a truncated frame', () => {
  const dec = new FrameDecoder();
  const f = encodeFrame(Buffer.alloc(100, 3));
  assert.equal(dec.partialBytes, 0);
  dec.push(f.subarray(0, 2), () => {});
  assert.equal(dec.partialBytes, 2);
  dec.push(f.subarray(2, 50), () => {});
  assert.equal(dec.partialBytes, 50);
  let got = 0;
  dec.push(f.subarray(50), () => got++);
  assert.equal(got, 1);
  assert.equal(dec.partialBytes, 0);
});
