/**
 * `secp2psip bootstrap` and `secp2psip adapter` as real processes for the
 * end-to-end tests: started on the command line, ready once they print their
 * addresses on stdout, stopped with SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface Proc {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  stop(): Promise<void>;
}

export interface BootstrapProc extends Proc {
  /** `<hash>@host:port` */
  spec: string;
  addr: string;
}

export interface AdapterProc extends Proc {
  /** `host:port` of its SIP side. */
  sip: string;
  sipPort: number;
}

/** `secp2psip <args>` as a process, without waiting for it to be up; `stop` sends SIGTERM (SIGKILL after 10 s). */
export function spawnDaemon(args: string[]): Proc {
  const proc = spawn(process.execPath, ['bin/secp2psip.mjs', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    },
  };
}

/** A daemon process, once its stdout matches `ready`. */
function start(args: string[], ready: RegExp, timeoutMs = 60_000): Promise<{ p: Proc; m: RegExpExecArray }> {
  const p = spawnDaemon(args);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      p.proc.kill('SIGKILL');
      reject(new Error(`${args[0]} did not start:\n${p.stderr().slice(-2000)}`));
    }, timeoutMs);
    p.proc.stdout?.on('data', () => {
      const m = ready.exec(p.stdout());
      if (m) {
        clearTimeout(timer);
        resolve({ p, m });
      }
    });
    p.proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code}:\n${p.stderr().slice(-2000)}`));
    });
  });
}

export async function startBootstrapProc(dataDir: string, listen = '127.0.0.1:0', extra: string[] = []) {
  const { p, m } = await start(
    ['bootstrap', '--listen', listen, '--data', dataDir, '--log-level', 'info', ...extra],
    /^bootstrap (\S+@(\S+))\nkey [0-9a-f]{64}\n/m,
  );
  return { ...p, spec: m[1], addr: m[2] } as BootstrapProc;
}

/** An adapter with open registration (phones register without a password), as the tests written before digest use. */
export function startAdapterProc(bootstrap: string, dataDir: string, sip = '127.0.0.1:0', extra: string[] = []) {
  return startAuthAdapterProc(bootstrap, dataDir, sip, ['--open-registration', ...extra]);
}

/** An adapter whose phones authenticate with the users of `dataDir` (added with `--add-user`). */
export async function startAuthAdapterProc(
  bootstrap: string,
  dataDir: string,
  sip = '127.0.0.1:0',
  extra: string[] = [],
) {
  const { p, m } = await start(
    ['adapter', '--sip', sip, '--bootstrap', bootstrap, '--data', dataDir, '--log-level', 'info', ...extra],
    /^adapter sip:(\S+:(\d+))\n/m,
  );
  return { ...p, sip: m[1], sipPort: Number(m[2]) } as AdapterProc;
}

/** Poll until `check` holds (real processes: there is no simulated clock to advance). */
export async function eventually(what: string, check: () => boolean, ms = 20_000, detail = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} did not happen\n${detail().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
