import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NameRegistry } from '../../src/secp2psip/name-registry.ts';
import { MARK_BATCH_MS, PublishedMarks } from '../../src/secp2psip/published-marks.ts';
import { SimClock } from '../../src/util/clock.ts';
import { silentLogger } from '../../src/util/log.ts';

/** A registry that records its marks, and fails them while `down`. */
function registry() {
  const r = { down: false, batches: [] as string[][], single: 0 };
  const names = {
    markPublishedMany(items: ReadonlyArray<{ name: string; location: Uint8Array }>) {
      if (r.down) throw new Error('registry unreachable');
      r.batches.push(items.map((i) => `${i.name}@${i.location[0]}`));
    },
    markPublished() {
      r.single++;
    },
  } as unknown as NameRegistry;
  return { r, names };
}

const flushed = () => new Promise<void>((done) => setImmediate(done));

/**
 * Registrations are marked published after their answer, a batch at a
 * time (published-marks.ts): one transaction per batch, the latest location
 * of a name, failed marks tried again, and what is waiting written on close.
 */
describe('marking answered registrations published', () => {
  it('writes the marks of one batch period in one transaction, each name with its latest location', async () => {
    const clock = new SimClock();
    const { r, names } = registry();
    const marked: string[] = [];
    const m = new PublishedMarks(names, clock, silentLogger, (n) => {
      marked.push(n);
    });
    m.add('alice', Uint8Array.of(1));
    m.add('bob', Uint8Array.of(1));
    m.add('alice', Uint8Array.of(2));
    assert.deepEqual(r.batches, [], 'nothing written on the answer path');
    clock.advance(MARK_BATCH_MS);
    await flushed();
    assert.deepEqual(r.batches, [['alice@2', 'bob@1']]);
    assert.deepEqual(marked, ['alice', 'bob']);
    assert.equal(r.single, 0);
  });

  it('tries failed marks again once the registry is back; on close, writes what waits without retrying', async () => {
    const clock = new SimClock();
    const { r, names } = registry();
    const m = new PublishedMarks(names, clock, silentLogger, () => {});
    r.down = true;
    m.add('carol', Uint8Array.of(7));
    clock.advance(MARK_BATCH_MS);
    await flushed();
    assert.deepEqual(r.batches, []);
    r.down = false;
    clock.advance(1000);
    await flushed();
    assert.deepEqual(r.batches, [['carol@7']]);
    m.add('dave', Uint8Array.of(3));
    await m.flush(false);
    assert.deepEqual(r.batches.at(-1), ['dave@3']);
    clock.advance(5000);
    await flushed();
    assert.equal(r.batches.length, 2, 'nothing written twice, no timer left behind');
  });
});
