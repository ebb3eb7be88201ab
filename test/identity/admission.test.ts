import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ADMISSION_SKEW_MS, issueAdmission, verifyAdmission } from '../../src/identity/admission.ts';
import { safeDecode } from '../../src/identity/cbor.ts';
import { Identity } from '../../src/identity/identity.ts';
import { encodeSigned } from '../../src/identity/verify.ts';
import { SeededRandom } from '../../src/util/random.ts';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

describe('AdmissionCertificate', () => {
  const bootstrap = Identity.generate();
  const node = Identity.generate();
  const nodeId = 'c0ffee'.padEnd(40, '0');

  it('binds a node id to a node key for a time', () => {
    const cert = issueAdmission(bootstrap, node.bundle, nodeId, HOUR, T0);
    assert.ok(cert.length < 200, `compact (${cert.length} bytes)`);
    const r = verifyAdmission(cert, bootstrap.bundle, T0 + 1000);
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.deepEqual(r.value, { nodeId, nodeKey: node.bundle.sig, issuedAt: T0, expiresAt: T0 + HOUR });
  });

  it('refuses another issuer, expiry, future issue, tampering and garbage', () => {
    const cert = issueAdmission(bootstrap, node.bundle.sig, nodeId, HOUR, T0);
    assert.equal(verifyAdmission(cert, Identity.generate().bundle, T0).ok, false);
    assert.equal(verifyAdmission(cert, bootstrap.bundle, T0 + HOUR).ok, false);
    assert.equal(verifyAdmission(cert, bootstrap.bundle, T0 - ADMISSION_SKEW_MS - 1).ok, false);
    assert.ok(verifyAdmission(cert, bootstrap.bundle, T0 - ADMISSION_SKEW_MS + 1).ok);
    for (let i = 0; i < cert.length; i++) {
      const t = Uint8Array.from(cert);
      t[i] ^= 0x04;
      const r = verifyAdmission(t, bootstrap.bundle, T0 + 1);
      // A flipped bit may still decode, but then it never verifies as the original statement.
      if (r.ok) assert.fail(`tampered byte ${i} accepted`);
    }
    const rnd = new SeededRandom(1);
    for (let i = 0; i < 200; i++)
      assert.equal(verifyAdmission(rnd.bytes(rnd.int(200)), bootstrap.bundle, T0).ok, false);
  });

  it('a signature made for another purpose is not an admission', () => {
    const v = safeDecode(issueAdmission(bootstrap, node.bundle, nodeId, HOUR, T0));
    assert.ok(v.ok);
    const body = safeDecode((v.value as Uint8Array[])[0]);
    assert.ok(body.ok);
    const otherPurpose = encodeSigned(bootstrap, 'secp2psip/other', body.value);
    assert.equal(verifyAdmission(otherPurpose, bootstrap.bundle, T0 + 1).ok, false);
  });

  it('refuses bad inputs at issue time', () => {
    assert.throws(() => issueAdmission(bootstrap, node.bundle, 'xyz', HOUR, T0));
    assert.throws(() => issueAdmission(bootstrap, new Uint8Array(31), nodeId, HOUR, T0));
    assert.throws(() => issueAdmission(bootstrap, node.bundle, nodeId, 0, T0));
  });
});
