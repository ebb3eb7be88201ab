import { type ChildProcess, spawn } from 'node:child_process';

export interface CliProcess {
  proc: ChildProcess;
  hash: string;
  /** `sip:<hash>@host:port` printed at start. */
  uri: string;
  sipPort: number;
  /** `<hash>@host:port` of the DHT listener. */
  peer: string;
  stderr: () => string;
}

/**
 * Start `secp2psip node|gateway` and resolve once it printed its hash, SIP URI and peer spec. A node has open
 * registration (its phone registers without a password, as in the tests written before digest) unless
 * `openRegistration` is false.
 */
export function startCli(
  role: 'node' | 'gateway',
  args: string[],
  timeoutMs = 90_000,
  openRegistration = true,
): Promise<CliProcess> {
  const open = role === 'node' && openRegistration ? ['--open-registration'] : [];
  const proc = spawn(process.execPath, ['bin/secp2psip.mjs', role, ...args, ...open], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  let out = '';
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${role} did not start: ${err}`));
    }, timeoutMs);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const hash = /^hash ([0-9a-f]{40})$/m.exec(out)?.[1];
      const uri = /^sip (sip:\S+)$/m.exec(out)?.[1];
      const peer = /^peer (\S+)$/m.exec(out)?.[1];
      if (!hash || !uri || !peer) return;
      clearTimeout(timer);
      resolve({ proc, hash, uri, sipPort: Number(uri.split(':').pop()), peer, stderr: () => err });
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited with ${code}: ${err}`));
    });
  });
}

/** SIGTERM and wait for the exit code (SIGKILL after 10 s). */
export function stopCli(p: { proc: ChildProcess } | undefined): Promise<number | null> {
  if (!p || p.proc.exitCode !== null) return Promise.resolve(p?.proc.exitCode ?? null);
  return new Promise((resolve) => {
    const t = setTimeout(() => p.proc.kill('SIGKILL'), 10_000);
    p.proc.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    p.proc.kill('SIGTERM');
  });
}
