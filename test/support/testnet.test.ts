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

  it('a router keeps source ports unless told to pick a random one, and can drop unsolicited connections', async () => {
    const net = await Testnet.create(3, { prefix: 'sp2tself' });
    try {
      const [keeps, symmetric, pub] = net.hosts;
      const [a] = await net.addNatLan(keeps, 1, { dropUnsolicited: true });
      const [b] = await net.addNatLan(symmetric, 1, { randomFully: true });
      // Silence from the router that drops them, a reset (it answered) from the other.
      assert.equal(await net.reaches(pub, keeps), false);
      assert.equal(await net.reaches(pub, symmetric), true);
      const server = net.spawn(pub, [
        process.execPath,
        '-e',
        `require('net').createServer((s) => { console.log('port ' + s.remotePort); s.end(); }).listen(9000, '${pub.addr}', () => console.log('up'))`,
      ]);
      let out = '';
      server.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      while (!out.includes('up')) await new Promise((r) => setTimeout(r, 50));
      /** The source ports `pub` sees for connections from `inside` leaving from local ports 40001..40003. */
      const seenPorts = async (inside: typeof a) => {
        const ports: number[] = [];
        for (const local of [40001, 40002, 40003]) {
          const before = out.length;
          const dial = `const s = require('net').connect({ host: '${pub.addr}', port: 9000, localPort: ${local} }); s.on('close', () => process.exit(0)); s.resume();`;
          await net.exec(inside, [process.execPath, '-e', dial]);
          while (!/port \d+\n/.test(out.slice(before))) await new Promise((r) => setTimeout(r, 20));
          ports.push(Number(/port (\d+)\n/.exec(out.slice(before))?.[1]));
        }
        return ports;
      };
      assert.deepEqual(await seenPorts(a), [40001, 40002, 40003]);
      // A random port per connection: three of them all equal to the local ones would be a 1 in 10^13 chance.
      assert.notDeepEqual(await seenPorts(b), [40001, 40002, 40003]);
    } finally {
      await net.destroy();
    }
  });
});
