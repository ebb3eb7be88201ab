import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { ChordNode } from '../../../src/dht/chord/chord-node.ts';
import { defaultValidator, type RecordValidator } from '../../../src/dht/store/validators.ts';
import { ChordTestnet } from '../../../src/sim/chord-testnet.ts';

/** Records whose value says it is genuine: what a signature check would decide, reduced to a prefix. */
const base = defaultValidator();
const genuineOnly: RecordValidator = {
  validate: (r, now) => base.validate(r, now) ?? (String(r.value).startsWith('genuine:') ? null : 'not genuine'),
  select: base.select,
};

/**
 * ChordNode.getReplicas: every replica's copy of a key, each passing the
 * reader's validator, so a reader need not take one holder's word: a holder
 * that drops its copy or alters it leaves the other copies to be read.
 */
describe('reading every replica of a key (getReplicas)', () => {
  let t: ChordTestnet;
  let reader: ChordNode;
  before(async () => {
    t = await ChordTestnet.create(16, { seed: 7, chord: { replicas: 3, store: { validators: { '': genuineOnly } } } });
    const writer = t.liveNodes()[2];
    for (const k of ['k1', 'k2']) assert.ok((await t.settle(writer.put(k, `genuine:${k}`, 3_600_000))).ok, k);
    reader = t.liveNodes()[9];
  });

  const holders = (key: string) => t.liveNodes().filter((n) => n.store.has(key));

  it('returns the copy of each of the r replicas', async () => {
    const got = await t.settle(reader.getReplicas(['k1', 'k2', 'missing']));
    assert.equal(got.get('k1')?.length, 3);
    assert.equal(got.get('k2')?.length, 3);
    assert.deepEqual(got.get('missing'), []);
    for (const r of got.get('k1') ?? []) assert.equal(r.value, 'genuine:k1');
  });

  it('a holder that drops its copy and one that alters it: the third copy is still read, the altered one is not', async () => {
    const [dropper, forger] = holders('k2');
    dropper.store.delete('k2');
    const rec = forger.store.get('k2');
    assert.ok(rec);
    (rec as { value: string }).value = 'forged:k2';
    const got = await t.settle(reader.getReplicas(['k2']));
    assert.deepEqual(
      got.get('k2')?.map((r) => r.value),
      ['genuine:k2'],
    );
  });
});
