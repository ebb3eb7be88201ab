/**
 * Key pieces and identity primitives on one core: Shamir split and rebuild of
 * a user's public key bundle (seed mode: k random pieces, no check; robust
 * mode: all n pieces, Berlekamp-Welch with the digest check, clean, with the
 * most corruption it corrects, and failing closed), for the seed's k/n
 * choices (seed 000 section VI, Figure 5); Ed25519, ECDSA P-256 and RSA-2048
 * signatures; HPKE seal+open (ours on node:crypto and @hpke/core); X.509 chain
 * verification. Prints a table and writes bench/results/sharing.json.
 *
 * Run: node --import tsx bench/sharing.ts [--seconds 0.3]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { verifyCertificateChain } from '../src/identity/certificate-chain.ts';
import { createCa, issueCertificate } from '../src/identity/certificates.ts';
import { Identity } from '../src/identity/identity.ts';
import { privateKeyToRaw } from '../src/identity/keys.ts';
import { ENC_LEN, open, SEAL_INFO, seal } from '../src/identity/seal.ts';
import { UserSigner } from '../src/identity/user-key.ts';
import { verify } from '../src/identity/verify.ts';
import { choosePieceIndices, combineSeed } from '../src/sharing/combine-seed.ts';
import { combineRobust } from '../src/sharing/combine-robust.ts';
import { dot, lagrangeWeights } from '../src/sharing/gf256.ts';
import { type PubKeyPiece, pieceCheck } from '../src/sharing/piece.ts';
import { splitKey } from '../src/sharing/split.ts';
import { parseArgs } from '../src/util/args.ts';
import { SeededRandom } from '../src/util/random.ts';
import { mean, percentile } from '../src/util/stats.ts';

const args = parseArgs(process.argv.slice(2), { seconds: { type: 'string', default: '0.3' } });
const SECONDS = Number(args.seconds);
if (!(SECONDS > 0)) {
  process.stderr.write('--seconds needs a positive number\n');
  process.exit(2);
}

interface Row {
  op: string;
  n: number;
  mean_us: number;
  p50_us: number;
  p99_us: number;
  ops_per_s: number;
}
const rows: Row[] = [];

async function measure(op: string, fn: () => unknown): Promise<void> {
  for (let i = 0; i < 20; i++) await fn(); // warm-up
  const samples: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end || samples.length < 20) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) * 1000);
  }
  const m = mean(samples);
  rows.push({
    op,
    n: samples.length,
    mean_us: round(m),
    p50_us: round(percentile(samples, 50)),
    p99_us: round(percentile(samples, 99)),
    ops_per_s: Math.round(1e6 / m),
  });
  process.stderr.write('.');
}

const round = (x: number) => Math.round(x * 10) / 10;

/** The strongest corruption robust mode still corrects: t pieces on a consistent fake polynomial. */
function forge(pieces: PubKeyPiece[], bad: number[], k: number, rnd: SeededRandom): PubKeyPiece[] {
  const out = pieces.map((p) => ({ ...p, data: Uint8Array.from(p.data) }));
  const len = out[0].data.length - 1;
  const fake = rnd.bytes(len);
  const anchors = out.filter((p) => !bad.includes(p.index)).slice(0, k - 1);
  const xs = Uint8Array.from([0, ...anchors.map((p) => p.index)]);
  for (const i of bad) {
    const w = lagrangeWeights(xs, i);
    for (let b = 0; b < len; b++) out[i - 1].data[b] = dot(w, [fake[b], ...anchors.map((p) => p.data[b])]);
    out[i - 1].check = pieceCheck(fake);
  }
  return out;
}

const rnd = new SeededRandom(42);
const user = Identity.generate();
const secret = user.encodeBundle(); // what the bootstrap splits: the 70-byte public bundle

for (const [k, n] of [
  [3, 8],
  [4, 8],
  [6, 10],
  [9, 10],
] as const) {
  const pieces = await splitKey(secret, n, k);
  const t = Math.floor((n - k) / 2);
  await measure(`split k=${k} n=${n}`, () => splitKey(secret, n, k));
  await measure(`rebuild seed k=${k} n=${n}`, () =>
    combineSeed(
      choosePieceIndices(n, k, rnd).map((i) => pieces[i - 1]),
      k,
      rnd,
    ),
  );
  await measure(`rebuild robust k=${k} n=${n}, clean`, () => combineRobust(pieces, n, k));
  if (t > 0) {
    const forged = forge(pieces, [2, n].slice(0, t), k, rnd);
    await measure(`rebuild robust k=${k} n=${n}, ${t} forged`, () => combineRobust(forged, n, k));
  }
  const tooMany = forge(pieces, [1, 2, 3, 4, 5].slice(0, t + 1), k, rnd);
  await measure(`rebuild robust k=${k} n=${n}, ${t + 1} forged (fails)`, () => {
    try {
      combineRobust(tooMany, n, k);
    } catch {
      // fails closed, as expected
    }
  });
}

/**
 * The difference the robust mode makes: with `bad` corrupted pieces among n,
 * how often each mode returns the wrong key, the right key, or an error.
 */
interface Outcome {
  config: string;
  bad: number;
  mode: 'seed' | 'robust';
  right: number;
  wrong: number;
  error: number;
}
const outcomes: Outcome[] = [];
const TRIALS = 300;
for (const [k, n] of [
  [3, 8],
  [6, 10],
  [9, 10],
] as const) {
  const pieces = await splitKey(secret, n, k);
  for (const bad of [1, Math.floor((n - k) / 2), Math.floor((n - k) / 2) + 1]) {
    if (bad < 1) continue;
    if (outcomes.some((o) => o.config === `k=${k} n=${n}` && o.bad === bad)) continue;
    for (const mode of ['seed', 'robust'] as const) {
      const o: Outcome = { config: `k=${k} n=${n}`, bad, mode, right: 0, wrong: 0, error: 0 };
      for (let t = 0; t < TRIALS; t++) {
        const victims = choosePieceIndices(n, bad, rnd);
        const damaged = pieces.map((p) => ({ ...p, data: Uint8Array.from(p.data) }));
        for (const i of victims) damaged[i - 1].data[rnd.int(secret.length)] ^= 1 + rnd.int(255);
        try {
          const got =
            mode === 'seed'
              ? await combineSeed(
                  choosePieceIndices(n, k, rnd).map((i) => damaged[i - 1]),
                  k,
                  rnd,
                )
              : combineRobust(damaged, n, k).secret;
          if (Buffer.compare(got, secret) === 0) o.right++;
          else o.wrong++;
        } catch {
          o.error++;
        }
      }
      outcomes.push(o);
    }
  }
}
process.stderr.write('.');

const msg = new Uint8Array(200).fill(7);
const sig = user.sign('bench/msg', msg);
await measure('Ed25519 sign (200 B)', () => user.sign('bench/msg', msg));
await measure('Ed25519 verify (200 B)', () => verify(user.bundle, 'bench/msg', msg, sig));
for (const type of ['ecdsa-p256', 'rsa-2048'] as const) {
  const signer = UserSigner.generate(type);
  const s = signer.sign('bench/msg', msg);
  await measure(`${type} sign (200 B)`, () => signer.sign('bench/msg', msg));
  await measure(`${type} verify (200 B)`, () => signer.key.verify('bench/msg', msg, s));
}

const aad = new Uint8Array(32).fill(1);
await measure('HPKE seal+open 200 B (node:crypto)', () => {
  const r = open(user, seal(user.bundle, msg, aad), aad);
  if (!r.ok) throw new Error(r.error);
});
const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
const sk = await suite.kem.importKey('raw', privateKeyToRaw(user.kemKey), false);
const pk = await suite.kem.deserializePublicKey(user.bundle.kem);
await measure('HPKE seal+open 200 B (@hpke/core)', async () => {
  const s = await suite.seal({ recipientPublicKey: pk, info: SEAL_INFO }, msg, aad);
  await suite.open({ recipientKey: sk, enc: s.enc, info: SEAL_INFO }, s.ct, aad);
});
if (ENC_LEN !== 32) throw new Error('unexpected enc length');

const root = await createCa({ subject: 'CN=Bench Root', keyType: 'ecdsa-p256' });
const inter = await createCa({ subject: 'CN=Bench Intermediate', keyType: 'ecdsa-p256', parent: root });
const leaf = await issueCertificate(inter, UserSigner.generate('ecdsa-p256').key.publicKey, 'CN=user', 30);
await measure('X.509 chain verify (leaf, intermediate, root)', () => {
  const r = verifyCertificateChain(leaf.der, [inter.certDer], [root.certDer], Date.now());
  if (!r.ok) throw new Error(r.error);
});
process.stderr.write('\n');

const w = Math.max(...rows.map((r) => r.op.length));
const header = `${'operation'.padEnd(w)}  ${'mean us'.padStart(9)}  ${'p50 us'.padStart(9)}  ${'p99 us'.padStart(9)}  ${'ops/s'.padStart(9)}`;
console.log(header);
console.log('-'.repeat(header.length));
for (const r of rows) {
  console.log(
    `${r.op.padEnd(w)}  ${String(r.mean_us).padStart(9)}  ${String(r.p50_us).padStart(9)}  ${String(r.p99_us).padStart(9)}  ${String(r.ops_per_s).padStart(9)}`,
  );
}
console.log(`\nrebuild outcomes over ${TRIALS} lookups, random byte damage in 'bad' random pieces:`);
console.log(
  `${'k/n'.padEnd(10)}  ${'bad'.padStart(3)}  ${'mode'.padEnd(6)}  ${'right'.padStart(6)}  ${'wrong'.padStart(6)}  ${'error'.padStart(6)}`,
);
for (const o of outcomes) {
  console.log(
    `${o.config.padEnd(10)}  ${String(o.bad).padStart(3)}  ${o.mode.padEnd(6)}  ${String(o.right).padStart(6)}  ${String(o.wrong).padStart(6)}  ${String(o.error).padStart(6)}`,
  );
}
console.log(`\nsecret: ${secret.length}-byte public bundle; one core of ${cpus()[0]?.model ?? 'unknown CPU'}`);
console.log('seed 000 (Java, LAN): piece retrieval + rebuild 256.48 / 486.40 / 678.79 ms for k=3/6/9');

const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'sharing.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ bench: 'sharing', date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, seconds: SECONDS, rows, outcomes }, null, 2)}\n`,
);
console.log(`wrote ${out}`);
