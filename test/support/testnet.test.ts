import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { iptablesUnavailable, removeLeftovers, Testnet, testnetUnavailable } from './testnet.ts';

const unavailable = testnetUnavailable();
const namespaces = () => execFileSync('ip', ['netns', 'list']).toString();

/** The multi-host test network itself: links, partitions, heal, cleanup. */
describe('test network of namespaces', { skip: unavailable ?? false, timeout: 120_000 }, () => {
  it('hosts reach each other, partitions cut exactly the links between groups, heal restores them', async () => {
    const net = await Testnet.create(4, { prefix: 'sp2tself' });
    try {
      const [a, b, c, d] = net.hosts;
      const { stdout } = await net.exec(a, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
      assert.match(stdout, new RegExp(`inet ${a.addr.replaceAll('.', '\\.')}/24`));
      assert.deepEqual(await Promise.all([net.reaches(a, b), net.reaches(a, c), net.reaches(c, d)]), [
        true,
        true,
        true,
      ]);
      // d belongs to no group: it keeps every link.
      await net.partition([[a, b], [c]]);
      const cut = await Promise.all([
        net.reaches(a, b),
        net.reaches(a, c),
        net.reaches(c, a),
        net.reaches(b, c),
        net.reaches(c, d),
        net.reaches(a, d),
      ]);
      assert.deepEqual(cut, [true, false, false, false, true, true]);
      await net.heal();
      assert.deepEqual(await Promise.all([net.reaches(a, c), net.reaches(b, c)]), [true, true]);
      await net.linkDown(b);
      assert.equal(await net.reaches(a, b), false);
      await net.linkUp(b);
      assert.equal(await net.reaches(a, b), true);
    } finally {
      await net.destroy();
    }
    assert.doesNotMatch(namespaces(), new RegExp(net.id));
  });

  it('partitions by separate bridges where iptables is missing', async () => {
    const net = await Testnet.create(3, { prefix: 'sp2tself', cutMethod: 'bridge' });
    try {
      const [a, b, c] = net.hosts;
      await net.partition([[a], [b], [c]]);
      assert.deepEqual(await Promise.all([net.reaches(a, b), net.reaches(b, c), net.reaches(a, c)]), [
        false,
        false,
        false,
      ]);
      await net.heal();
      assert.deepEqual(await Promise.all([net.reaches(a, b), net.reaches(b, c)]), [true, true]);
    } finally {
      await net.destroy();
    }
  });

  it('destroy kills processes left inside; leftovers of a crashed run are removed', async () => {
    const net = await Testnet.create(1, { prefix: 'sp2tself' });
    const p = net.spawn(net.hosts[0], ['sleep', '60']);
    const exited = new Promise((r) => p.once('exit', r));
    await net.destroy();
    await exited;
    assert.equal(p.signalCode, 'SIGKILL');
    // A run whose process is gone left a namespace behind.
    const dead = spawn('true');
    await new Promise((r) => dead.once('exit', r));
    const left = `sp2tself-${dead.pid}-0-h0`;
    execFileSync('ip', ['netns', 'add', left]);
    assert.deepEqual(await removeLeftovers('sp2tself'), [left]);
    assert.doesNotMatch(namespaces(), new RegExp(left));
  });
});

describe('NAT router in the test network', { skip: iptablesUnavailable() ?? false, timeout: 60_000 }, () => {
  it('a host behind the router reaches out with the router address and cannot be reached from outside', async () => {
    const net = await Testnet.create(2, { prefix: 'sp2tself' });
    try {
      const [router, pub] = net.hosts;
      const [inside] = await net.addNatLan(router, 1);
      assert.equal(inside.behind, router);
      const server = net.spawn(pub, [
        process.execPath,
        '-e',
        `require('net').createServer((s) => { console.log('from ' + s.remoteAddress); s.end(); }).listen(9000, '${pub.addr}', () => console.log('up'))`,
      ]);
      let out = '';
      const seen = (re: RegExp) =>
        new Promise<void>((resolve) => {
          const check = () => re.test(out) && resolve();
          server.stdout?.on('data', (d: Buffer) => {
            out += d.toString();
            check();
          });
          check();
        });
      await seen(/up/);
      await net.exec(inside, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${pub.addr}/9000`]);
      await seen(/from /);
      assert.match(out, new RegExp(`from ${router.addr.replaceAll('.', '\\.')}\\n`));
      assert.equal(await net.reaches(pub, inside), false);
      assert.equal(await net.reaches(router, inside), true);
    } finally {
      await net.destroy();
    }
    assert.doesNotMatch(namespaces(), new RegExp(net.id));
  });
});
