import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { iterativeLookup, type LookupContext } from '../../../src/dht/chord/lookup.ts';
import type { FindReply, NeighborsReply } from '../../../src/dht/chord/messages.ts';
import type { NodeRef } from '../../../src/rpc/types.ts';

/**
 * The second-source checks of the iterative lookup (lookup.ts, step 4) against scripted answers: each node's
 * FIND and NEIGHBORS reply is written out, a node with none is silent. Ids are two hex digits padded to a ring
 * position; the asking node sits at 0a.
 */
const id = (h: string) => h.padEnd(40, '0');
const ref = (h: string): NodeRef => ({ id: id(h), addr: `mem-${h}`, key: new Uint8Array(32) });
const refs = (...hs: string[]) => hs.map(ref);

interface Script {
  local: FindReply;
  find: Record<string, FindReply>;
  nb: Record<string, NeighborsReply>;
}

function context(s: Script, reports: [string, string][] = []): LookupContext {
  return {
    self: ref('0a'),
    localStep: () => s.local,
    find: async (to) => s.find[to.id.slice(0, 2)] ?? null,
    neighbors: async (to) => s.nb[to.id.slice(0, 2)] ?? null,
    report: (to, silent) => reports.push([to.id.slice(0, 2), silent.slice(0, 2)]),
  };
}

// The true ring near the target 48: ... 20 30 50 60 70 80 ...; 50 owns 48.
const honestNb: Record<string, NeighborsReply> = {
  '20': { pred: ref('10'), succs: refs('30', '50', '60') },
  '50': { pred: ref('30'), succs: refs('60', '70', '80') },
};
const local: FindReply = { succs: refs('10', '20', '28'), next: refs('30') };

describe('lookup: the second source must be one', () => {
  it('a liar naming c and a lying c naming it back (their lists not continuing each other) is refused', async () => {
    // 30 lies: it skips the owner 50 and names 60, and tells the same in NEIGHBORS. 60 lies too and names 30
    // as its predecessor, with a made-up successor list. Before, the two agreeing on "30 precedes 60" was enough.
    const s: Script = {
      local,
      find: { '30': { succs: refs('60', '70', '80'), next: [] } },
      nb: {
        ...honestNb,
        '30': { pred: ref('20'), succs: refs('60', '70', '80') },
        '60': { pred: ref('30'), succs: refs('a0', 'b0', 'c0') },
      },
    };
    const res = await iterativeLookup(context(s), id('48'));
    assert.ok(!res.ok || res.owner.id === id('50'), `accepted ${res.ok && res.owner.id.slice(0, 2)}`);
  });

  it('a predecessor that names c only further down its list (not as its successor) does not vouch for c', async () => {
    // 60 (a liar, named by the lying 30) names 40 as its predecessor; 40, lying too, lists 60 third.
    const s: Script = {
      local,
      find: { '30': { succs: refs('60', '70', '80'), next: [] } },
      nb: {
        ...honestNb,
        '30': { pred: ref('20'), succs: refs('60', '70', '80') },
        '60': { pred: ref('40'), succs: refs('70', '80', '90') },
        '40': { pred: ref('38'), succs: refs('a0', 'b0', '60') },
      },
    };
    const res = await iterativeLookup(context(s), id('48'));
    assert.ok(!res.ok || res.owner.id === id('50'), `accepted ${res.ok && res.owner.id.slice(0, 2)}`);
  });

  it('an honest owner whose lists continue each other is accepted in one NEIGHBORS', async () => {
    const s: Script = { local, find: { '30': { succs: refs('50', '60', '70'), next: [] } }, nb: honestNb };
    const res = await iterativeLookup(context(s), id('48'));
    assert.ok(res.ok);
    assert.equal(res.owner.id, id('50'));
    assert.equal(res.queries, 2, 'one FIND and one NEIGHBORS');
  });

  it('tells a node that the predecessor it names is silent, and still confirms it through a second list', async () => {
    // 40 crashed: 50 still names it, 30 and 20 already skip it.
    const reports: [string, string][] = [];
    const s: Script = {
      local,
      find: { '30': { succs: refs('50', '60', '70'), next: [] } },
      nb: {
        ...honestNb,
        '50': { pred: ref('40'), succs: refs('60', '70', '80') },
        '30': { pred: ref('20'), succs: refs('50', '60', '70') },
      },
    };
    const res = await iterativeLookup(context(s, reports), id('48'));
    assert.ok(res.ok);
    assert.equal(res.owner.id, id('50'));
    assert.deepEqual(reports, [['50', '40']]);
  });
});
