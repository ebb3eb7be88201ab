import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { encode as cborEncode } from 'cborg';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import { placeCall } from '../../src/secp2psip/caller.ts';
import { authorityFor } from '../../src/secp2psip/name-authority.ts';
import type { Caller, Payload } from '../../src/rpc/types.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { bindPhone, phoneInvite, SecTestnet } from './testnet.ts';

const dir = mkdtempSync(join(tmpdir(), 'secp2psip-boot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function contains(hay: Uint8Array, needle: string): boolean {
  return Buffer.from(hay).includes(Buffer.from(needle));
}

/** Record every payload an adapter sends and receives (what a relaying or observing node could see). */
function spy(a: AdapterNode, seen: Uint8Array[]): void {
  const ep = a.endpoint;
  const request = ep.request.bind(ep);
  ep.request = (to, method, payload, opts) => {
    seen.push(cborEncode(payload as object));
    return request(to, method, payload, opts).then((r) => {
      seen.push(cborEncode(r as object));
      return r;
    });
  };
  const orig = (a as unknown as { onRequest(m: string, p: Payload, c: Caller): Payload }).onRequest.bind(a);
  ep.onRequest(async (m, p, c) => {
    seen.push(cborEncode(p as object));
    const r = await orig(m, p, c);
    seen.push(cborEncode(r as object));
    return r;
  });
}

describe('protected mode', () => {
  it('keeps SIP and names out of everything sent between adapters and everything stored in the ring', async () => {
    const t = await SecTestnet.create(5, { k: 3, n: 5, mode: 'protected', seed: 9 });
    try {
      const [A, B] = t.adapters;
      const alice = await t.settle(A.ensureUser('alice'));
      await t.settle(B.ensureUser('bob'));
      bindPhone(B, 'bob', 'sip:bob@10.0.0.2:5080');
      const seen: Uint8Array[] = [];
      spy(A, seen);
      spy(B, seen);
      const req = phoneInvite('alice', 'bob');
      const out = await t.settle(placeCall(A.caller, req, alice, 'bob'));
      assert.ok(out.ok && out.protected, out.ok ? '' : out.reason);
      const secp = seen.filter((b) => contains(b, 'SEALED') || contains(b, 'REDIRECT') || contains(b, 'INVITE'));
      assert.ok(secp.length >= 2, 'the SECP2PSIP exchange was observed');
      const callId = req.headers.find((h) => h.name === 'Call-ID')?.value as string;
      for (const b of seen) {
        for (const secret of ['INVITE sip:', 'SIP/2.0', callId, '10.0.0.2:5080', 'REDIRECT'])
          assert.equal(contains(b, secret), false, `observed traffic contains '${secret}'`);
      }
      for (const node of [...t.adapters.map((a) => a.ring), ...t.bootstraps.map((x) => x.ring)])
        for (const r of node.store.all())
          assert.equal(contains(r.value as Uint8Array, 'SIP/2.0') || contains(r.value as Uint8Array, callId), false);
    } finally {
      t.close();
    }
  });
});

describe('several bootstraps', () => {
  it('agree on who owns a name: registrations through either end at its authority; a taken name stays taken', async () => {
    const t = await SecTestnet.create(4, { k: 2, n: 4, bootstraps: 2, seed: 3 });
    try {
      const [A0, A1, A2, A3] = t.adapters; // A0, A2 register through bootstrap 0; A1, A3 through bootstrap 1
      const through = [A0, A1];
      const authorityIndex = (n: string) =>
        t.bootstraps.findIndex((b) => b.endpoint.self.addr === authorityFor(n, t.info).addr);
      // Names chosen so each bootstrap is the authority for two of them; one of each pair is
      // registered through the other bootstrap (which must forward it), one through its own.
      const byAuthority: string[][] = [[], []];
      for (let i = 0; byAuthority.some((l) => l.length < 2); i++) {
        const list = byAuthority[authorityIndex(`user${i}`)];
        if (list.length < 2) list.push(`user${i}`);
      }
      const names = byAuthority.flat();
      for (const [a, [forwarded, direct]] of byAuthority.entries()) {
        await t.settle(through[1 - a].ensureUser(forwarded));
        await t.settle(through[a].ensureUser(direct));
      }
      for (const n of names) {
        const auth = authorityFor(n, t.info);
        const owner = t.bootstraps.find((b) => b.endpoint.self.addr === auth.addr);
        const other = t.bootstraps.find((b) => b !== owner);
        assert.ok(owner?.registry.get(n), `${n} is in its authority's registry`);
        assert.equal(other?.registry.get(n), undefined, `${n} is only there`);
      }
      assert.ok(
        t.bootstraps.every((b) => b.stats.forwarded > 0),
        'both forwarded some names',
      );
      for (const n of names) {
        const thief = [A2, A3];
        for (const a of thief) {
          const e = await t.settle(a.registerUser(n).catch((x) => x));
          assert.ok(isOverlayError(e, 'USER_NAME_TAKEN'), `${n} via ${a.endpoint.self.addr}: ${String(e)}`);
        }
      }
    } finally {
      t.close();
    }
  });
});

describe('restarts', () => {
  it('a bootstrap restarted mid-run keeps every registration and republishes the ring records', async () => {
    const t = await SecTestnet.create(3, { k: 2, n: 3, seed: 4, registryPath: () => join(dir, 'boot.sqlite') });
    try {
      const [A, B, C] = t.adapters;
      const alice = await t.settle(A.ensureUser('alice'));
      await t.settle(B.ensureUser('bob'));
      bindPhone(B, 'bob', 'sip:bob@10.0.0.2:5080');
      await t.stopBootstrap(0);
      // Wipe what the ring held, so only the bootstrap's registry can bring it back.
      for (const a of t.adapters) for (const r of a.ring.store.all()) a.ring.store.delete(r.key);
      // Long enough for the ring to notice the bootstrap is gone.
      await t.run(15_000);
      const b = await t.startBootstrap(0);
      await t.run(3000);
      assert.equal(b.registry.count(), 2);
      assert.equal(await t.settle(b.republishAll()), 2);
      const e = await t.settle(C.registerUser('bob').catch((x) => x));
      assert.ok(isOverlayError(e, 'USER_NAME_TAKEN'), String(e));
      const out = await t.settle(placeCall(A.caller, phoneInvite('alice', 'bob'), alice, 'bob'));
      assert.ok(out.ok, out.ok ? '' : out.reason);
    } finally {
      t.close();
    }
  });
});
