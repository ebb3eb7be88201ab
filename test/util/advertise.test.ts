import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, it } from 'node:test';
import {
  advertisedHost,
  hostPort,
  isLocalAddress,
  isWildcard,
  localAddressFacing,
  parseAdvertise,
  routableAddress,
} from '../../src/util/advertise.ts';
import { isOverlayError } from '../../src/util/errors.ts';

function iface(address: string, family: 'IPv4' | 'IPv6', internal = false, netmask = ''): NetworkInterfaceInfo {
  const base = { address, netmask, mac: '00:00:00:00:00:00', internal, cidr: null };
  return family === 'IPv4' ? { ...base, family } : { ...base, family, scopeid: 0 };
}

const LOOPBACK_ONLY = { lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)] };
const HOST = {
  lo: [iface('127.0.0.1', 'IPv4', true)],
  eth1: [iface('198.51.100.7', 'IPv4'), iface('2001:db8::7', 'IPv6')],
  eth0: [iface('169.254.3.3', 'IPv4'), iface('fe80::1', 'IPv6'), iface('203.0.113.5', 'IPv4')],
};

describe('advertised addresses', () => {
  it('knows the wildcards in every spelling', () => {
    for (const w of ['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0', '::0']) assert.equal(isWildcard(w), true, w);
    for (const a of ['127.0.0.1', '10.0.0.1', '::1', 'fe80::1', 'example.org']) assert.equal(isWildcard(a), false, a);
  });

  it('chooses a routable address in interface-name order, skipping loopback and link-local', () => {
    assert.deepEqual(routableAddress(4, HOST), { address: '203.0.113.5', iface: 'eth0' });
    assert.deepEqual(routableAddress(6, HOST), { address: '2001:db8::7', iface: 'eth1' });
    assert.equal(routableAddress(4, LOOPBACK_ONLY), undefined);
  });

  it('advertises --advertise, else the concrete bound address, else an interface address', () => {
    assert.deepEqual(advertisedHost('0.0.0.0', '192.0.2.9', '--advertise', HOST), { host: '192.0.2.9', how: 'given' });
    assert.deepEqual(advertisedHost('10.1.2.3', undefined, '--advertise', HOST), { host: '10.1.2.3', how: 'bound' });
    assert.deepEqual(advertisedHost('0.0.0.0', undefined, '--advertise', HOST), {
      host: '203.0.113.5',
      how: 'interface',
      iface: 'eth0',
    });
    // An IPv6 wildcard listens dual-stack: IPv6 first, IPv4 when the host has no global IPv6 address.
    assert.equal(advertisedHost('::', undefined, '--advertise', HOST).host, '2001:db8::7');
    assert.equal(advertisedHost('[::]', undefined, '--advertise', { eth0: HOST.eth0 }).host, '203.0.113.5');
  });

  it('refuses a wildcard with no routable address, naming the option to pass', () => {
    assert.throws(
      () => advertisedHost('0.0.0.0', undefined, '--advertise', LOOPBACK_ONLY),
      (e: unknown) => isOverlayError(e, 'BAD_CONFIG') && /pass --advertise host:port/.test((e as Error).message),
    );
    assert.throws(() => advertisedHost('0.0.0.0', '::', '--advertise', HOST), /not ::/);
  });

  it('parses --advertise: port 0 is the bound port, a wildcard is refused', () => {
    assert.deepEqual(parseAdvertise('203.0.113.5:7000', '--advertise'), { host: '203.0.113.5', port: 7000 });
    assert.deepEqual(parseAdvertise('[2001:db8::1]:0', '--advertise'), { host: '2001:db8::1' });
    assert.throws(() => parseAdvertise('0.0.0.0:7000', '--advertise'), /others can dial/);
    assert.throws(() => parseAdvertise('nonsense', '--advertise'), /host:port/);
    assert.equal(hostPort('2001:db8::1', 5060), '[2001:db8::1]:5060');
    assert.equal(hostPort('[2001:db8::1]', 5060), '[2001:db8::1]:5060');
  });

  it('knows its own addresses, and which one faces a LAN peer (a daemon behind a NAT)', () => {
    const home = {
      eth0: [iface('192.168.1.3', 'IPv4', false, '255.255.255.0')],
      lo: [iface('127.0.0.1', 'IPv4', true)],
    };
    assert.equal(isLocalAddress('192.168.1.3', home), true);
    assert.equal(isLocalAddress('203.0.113.5', home), false, 'a forwarded public address is not ours');
    assert.equal(localAddressFacing('192.168.1.20', home), '192.168.1.3');
    assert.equal(localAddressFacing('::ffff:192.168.1.20', home), '192.168.1.3');
    assert.equal(localAddressFacing('198.51.100.7', home), undefined);
    assert.equal(localAddressFacing('127.0.0.1', home), undefined, 'loopback is no LAN');
  });
});
