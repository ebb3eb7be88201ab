/**
 * Run sipp with `-trace_stat -stf <file>` and read its last statistics line:
 * the one place the benchmarks spawn sipp and parse its ';'-separated CSV.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { track, untrack } from './reaper.ts';

export interface SippRun {
  /** A cumulative column of the last statistics line, e.g. 'SuccessfulCall(C)' (0 if absent). */
  col(name: string): number;
  /** Wall time from spawn to exit. */
  seconds: number;
  /** sipp's stderr (its tail is worth quoting in errors). */
  stderr: string;
}

/**
 * Spawn `sipp args` in `cwd`; `args` must include `-trace_stat -stf <stf>`. Rejects if no statistics were written.
 * With `deadlineS`, sipp is killed after that long (its own -timeout does not end a run whose calls still wait for
 * answers); with `-fd 1` the statistics file has a line per second, so the counts up to the deadline survive.
 */
export function runSippWithStats(args: string[], stf: string, cwd: string, deadlineS?: number): Promise<SippRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('sipp', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    track(p.pid);
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const stop = deadlineS === undefined ? undefined : setTimeout(() => p.kill('SIGKILL'), deadlineS * 1000);
    p.once('error', reject);
    p.once('exit', () => {
      untrack(p.pid);
      clearTimeout(stop);
      const seconds = (performance.now() - started) / 1000;
      let lines: string[];
      try {
        lines = readFileSync(stf, 'utf8').trim().split('\n');
      } catch (e) {
        reject(new Error(`sipp wrote no statistics: ${(e as Error).message} ${stderr.slice(-1000)}`));
        return;
      }
      const head = lines[0].split(';');
      const last = lines[lines.length - 1].split(';');
      resolve({ col: (name) => Number(last[head.indexOf(name)] ?? 0), seconds, stderr });
    });
  });
}

/**
 * sipp as a caller's phone: INVITE sip:[service]@[remote] with an SDP offer, the 302 expected (a 100 allowed
 * before it), then its ACK.
 */
export function invite302Scenario(caller: string): string {
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="secp2psip-invite-302">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:${caller}@[remote_ip]:[remote_port]>;tag=[pid]T[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:${caller}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=${caller} 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0

    ]]>
  </send>
  <recv response="100" optional="true" />
  <recv response="302" />
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
`;
}
