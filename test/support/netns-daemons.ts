/**
 * `secp2psip` daemons as real processes on hosts of the test network
 * (testnet.ts): started on the command line inside a host's namespace, ready
 * once their stdout matches, killed with the network.
 */
import type { ChildProcess } from 'node:child_process';
import type { Host, Testnet } from './testnet.ts';

export interface NetnsDaemon {
  host: Host;
  proc: ChildProcess;
  out: () => string;
  err: () => string;
}

/** Start `secp2psip <args>` on `host`; resolves with the daemon and the match of `ready` on its stdout. */
export function startNetnsDaemon(
  net: Testnet,
  host: Host,
  args: string[],
  ready: RegExp,
  timeoutMs = 90_000,
): Promise<{ d: NetnsDaemon; m: RegExpExecArray }> {
  const proc = net.spawn(host, [process.execPath, 'bin/secp2psip.mjs', ...args], {
    env: { ...process.env, NODE_ENV: 'production' },
  });
  let out = '';
  let err = '';
  const d: NetnsDaemon = { host, proc, out: () => out, err: () => err };
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} on ${host.name} did not start:\n${err}`)), timeoutMs);
    proc.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ d, m });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} on ${host.name} exited with ${code}:\n${err.slice(-3000)}`));
    });
  });
}

/** A bootstrap: its spec and its node key. */
export const BOOTSTRAP_READY = /^bootstrap (\S+)\nkey ([0-9a-f]{64})\n/m;
export const ADAPTER_READY = /^adapter sip:(\S+)\nring \S+ (\S+)\n/m;
/** A WhanauSIP node or gateway: its hash, SIP URI and peer spec. */
export const WHANAU_READY = /^hash ([0-9a-f]{40})\n[\s\S]*^sip (sip:\S+)\n[\s\S]*^peer (\S+)\n/m;
