import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NetnsLayout } from './netns-layout.ts';
import { iptablesUnavailable } from './testnet.ts';

const namespaces = () => execFileSync('ip', ['netns', 'list']).toString();

describe('a cross-host layout on the test network', { skip: iptablesUnavailable() ?? false, timeout: 60_000 }, () => {
  it('names public hosts, routers and the hosts behind each, in the order given', async () => {
    const lay = await NetnsLayout.build({
      prefix: 'sp2tlay',
      hosts: ['a', 'b'],
      nats: [
        { router: 'r1', behind: ['x', 'y'] },
        { router: 'r2', behind: ['z'], randomFully: true },
      ],
      daemons: { n1: { kind: 'node', on: 'x' }, g: { kind: 'gateway', on: 'a' } },
    });
    try {
      assert.deepEqual(
        ['a', 'b', 'r1', 'r2'].map((n) => lay.host(n).addr),
        ['10.77.0.1', '10.77.0.2', '10.77.0.3', '10.77.0.4'],
      );
      assert.equal(lay.host('x').behind, lay.host('r1'));
      assert.equal(lay.host('y').behind, lay.host('r1'));
      assert.equal(lay.host('z').behind, lay.host('r2'));
      assert.equal(lay.host('a').behind, undefined);
      // From outside only the router answers for the hosts behind it.
      assert.equal(await lay.net.reaches(lay.host('a'), lay.host('x')), false);
      assert.equal(await lay.net.reaches(lay.host('x'), lay.host('a')), true);
      // WhanauSIP daemons have their identities before they start; the others are not WhanauSIP daemons.
      assert.match(lay.hash('n1'), /^[0-9a-f]{40}$/);
      assert.notEqual(lay.hash('n1'), lay.hash('g'));
      assert.ok(existsSync(`${lay.base}/n1/identity.pem`));
      assert.throws(() => lay.host('nobody'), /no host nobody/);
      assert.throws(() => lay.daemon('n1'), /has not started/);
      assert.throws(() => lay.bootstrapSpec(), /no bootstrap/);
      assert.throws(() => lay.key('n1'), /not one of several bootstraps/);
    } finally {
      await lay.destroy();
    }
    assert.ok(!existsSync(lay.base));
    assert.doesNotMatch(namespaces(), new RegExp(lay.net.id));
  });

  it('gives each of several bootstraps its node key before it starts', async () => {
    const lay = await NetnsLayout.build({
      prefix: 'sp2tlay',
      hosts: ['a', 'b'],
      daemons: { b1: { kind: 'bootstrap', on: 'a' }, b2: { kind: 'bootstrap', on: 'b' } },
    });
    try {
      assert.match(lay.key('b1'), /^[0-9a-f]{64}$/);
      assert.notEqual(lay.key('b1'), lay.key('b2'));
      assert.ok(existsSync(`${lay.base}/b2/node`));
      assert.throws(() => lay.bootstrapSpec('b2'), /b2 has not started/);
    } finally {
      await lay.destroy();
    }
  });

  it('refuses a layout that names a host twice, a daemon on an unknown host, and leaves nothing behind', async () => {
    const before = namespaces();
    await assert.rejects(
      NetnsLayout.build({ prefix: 'sp2tlay', hosts: ['a'], nats: [{ router: 'r', behind: ['a'] }] }),
      /two hosts named a/,
    );
    await assert.rejects(
      NetnsLayout.build({ prefix: 'sp2tlay', hosts: ['a'], daemons: { boot: { kind: 'bootstrap', on: 'b' } } }),
      /no host b in the layout/,
    );
    await assert.rejects(
      NetnsLayout.build({
        prefix: 'sp2tlay',
        hosts: ['a'],
        daemons: { boot: { kind: 'bootstrap', on: 'a' }, A: { kind: 'adapter', on: 'a', bootstrap: 'A' } },
      }),
      /adapter A: no bootstrap A in the layout/,
    );
    assert.equal(namespaces(), before);
  });
});
