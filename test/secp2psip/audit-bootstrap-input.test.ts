/**
 * What a bootstrap and an adapter do with SECP2PSIP messages they must not
 * accept (seed 000 IV.2 "Bootstrap Verification" in relaxed mode: an ad-hoc
 * key with proof of possession; and the team rule that input from the
 * network is answered with the right error or dropped and counted, never
 * thrown upward). Nothing refused binds a name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encode as cborEncode } from 'cborg';
import { Identity } from '../../src/identity/identity.ts';
import { UserSigner } from '../../src/identity/user-key.ts';
import type { AdapterNode } from '../../src/secp2psip/adapter-node.ts';
import { bootstrapRef, exchange } from '../../src/secp2psip/adapter-node.ts';
import { SECP2PSIP_METHOD } from '../../src/secp2psip/bootstrap-server.ts';
import {
  DOMAIN,
  decodeMessage,
  encodeMessage,
  type LocationRecord,
  locationTbs,
  type RegisterMsg,
  registerTbs,
} from '../../src/secp2psip/messages.ts';
import type { Payload } from '../../src/rpc/types.ts';
import { type ErrorCode, isOverlayError } from '../../src/util/errors.ts';
import { SecTestnet } from './testnet.ts';

interface Forge {
  /** Signs the proof of possession (default: the user's key). */
  popSigner?: UserSigner;
  /** Signs the location record (default: the user's key). */
  locSigner?: UserSigner;
  sealKey?: Uint8Array;
  locSipAddr?: string;
  nonce?: Uint8Array;
  ts?: number;
}

describe('bootstrap and adapter input they must refuse (in-memory ring)', () => {
  let t: SecTestnet;
  let A: AdapterNode;
  let B: AdapterNode;
  const boot = () => bootstrapRef(t.info[0]);

  /** A SECP2PSIP REGISTER (seed Table 1) for `name` from adapter `via`, with parts forged as asked. */
  function register(via: AdapterNode, name: string, user: Identity, f: Forge = {}): RegisterMsg {
    const signer = UserSigner.fromIdentity(user);
    const self = via.endpoint.self;
    const now = t.clock.wallNow();
    const sipAddr = '127.0.0.9:5060';
    const locBody: Omit<LocationRecord, 'sig' | 'admission'> = {
      name,
      nodeKey: self.key,
      nodeAddr: self.addr,
      sipAddr: f.locSipAddr ?? sipAddr,
      time: now,
      seq: 0,
    };
    const location: LocationRecord = {
      ...locBody,
      sig: (f.locSigner ?? signer).sign(DOMAIN.location, locationTbs(locBody)),
      admission: self.admission,
    };
    const body: Omit<RegisterMsg, 'sig' | 'location' | 't'> = {
      name,
      ip: sipAddr,
      publicKey: { signKey: signer.key.encode(), sealKey: f.sealKey ?? user.bundle.kem },
      node: { addr: self.addr, key: self.key },
      ts: f.ts ?? now,
      nonce: f.nonce ?? t.random.bytes(16),
    };
    return { t: 'REGISTER', ...body, location, sig: (f.popSigner ?? signer).sign(DOMAIN.register, registerTbs(body)) };
  }

  async function refused(via: AdapterNode, m: RegisterMsg | Uint8Array, code: ErrorCode, re?: RegExp): Promise<void> {
    const payload = m instanceof Uint8Array ? m : encodeMessage(m);
    const e = await t.settle(exchange(via.endpoint, boot(), payload).catch((x: unknown) => x));
    assert.ok(isOverlayError(e, code), `expected ${code}, got ${String(e)}`);
    if (re) assert.match(e.message, re);
  }

  async function unbound(name: string): Promise<void> {
    const e = await t.settle(
      exchange(A.endpoint, boot(), encodeMessage({ t: 'WHOIS', name })).catch((x: unknown) => x),
    );
    assert.ok(isOverlayError(e, 'USER_UNKNOWN'), `${name} must stay unbound: ${String(e)}`);
  }

  before(async () => {
    t = await SecTestnet.create(4, { k: 2, n: 4, seed: 44 });
    [A, B] = t.adapters;
  });
  after(() => t.close());

  it('a well-formed REGISTER from the adapter it names is accepted (control)', async () => {
    const ok = await t.settle(exchange(A.endpoint, boot(), encodeMessage(register(A, 'ok-user', Identity.generate()))));
    assert.equal(ok.t, 'REGISTERED');
  });

  it('a proof of possession signed by another key is refused; the name stays free', async () => {
    const m = register(A, 'pop', Identity.generate(), { popSigner: UserSigner.fromIdentity(Identity.generate()) });
    await refused(A, m, 'IDENTITY_BAD_SIGNATURE', /proof of possession/);
    await unbound('pop');
  });

  it('a location record not signed by the user, or naming another SIP address, is refused', async () => {
    const user = Identity.generate();
    await refused(
      A,
      register(A, 'loc', user, { locSigner: UserSigner.fromIdentity(Identity.generate()) }),
      'IDENTITY_BAD_SIGNATURE',
    );
    await refused(A, register(A, 'loc', user, { locSipAddr: '6.6.6.6:5060' }), 'IDENTITY_BAD_SIGNATURE');
    await unbound('loc');
  });

  it('a REGISTER sent by another node than the adapter it names is refused', async () => {
    await refused(B, register(A, 'sent-by-b', Identity.generate()), 'RPC_REFUSED', /node key it names/);
    await unbound('sent-by-b');
  });

  it('a sealing key of the wrong size is refused as malformed', async () => {
    await refused(
      A,
      register(A, 'badseal', Identity.generate(), { sealKey: new Uint8Array(7) }),
      'RPC_MALFORMED',
      /sealKey/,
    );
    await unbound('badseal');
  });

  it('a replayed REGISTER is refused, a stale one too', async () => {
    const user = Identity.generate();
    const m = register(A, 'replayed', user);
    const first = await t.settle(exchange(A.endpoint, boot(), encodeMessage(m)));
    assert.equal(first.t, 'REGISTERED');
    await refused(A, m, 'IDENTITY_REPLAY');
    await refused(A, register(A, 'stale', Identity.generate(), { ts: t.clock.wallNow() - 3600_000 }), 'IDENTITY_STALE');
    await unbound('stale');
  });

  it('malformed bytes are answered RPC_MALFORMED and counted; the bootstrap goes on serving', async () => {
    const b = t.boot;
    const before = b.stats.malformed;
    const junk: Payload[] = [
      new Uint8Array([0xff, 0x00, 0x13]),
      cborEncode({ t: 'REGISTER', name: 42 }),
      cborEncode({ t: 'NOPE' }),
      new Uint8Array(0),
      'a string',
      { t: 'WHOIS' },
    ];
    for (const p of junk) {
      const raw = await t.settle(A.endpoint.request(boot(), SECP2PSIP_METHOD, p));
      const d = decodeMessage(raw);
      assert.ok(d.ok && d.value.t === 'ERROR' && d.value.code === 'RPC_MALFORMED', JSON.stringify(d));
    }
    assert.equal(b.stats.malformed, before + junk.length);
    const admitted = await t.settle(exchange(A.endpoint, boot(), encodeMessage({ t: 'ADMIT' })));
    assert.equal(admitted.t, 'ADMITTED');
    await unbound('nobody-here');
  });

  it('an adapter answers malformed SECP2PSIP INVITEs with RPC_MALFORMED and keeps serving', async () => {
    for (const p of [new Uint8Array([1, 2, 3]), cborEncode({ t: 'INVITE' }), encodeMessage({ t: 'ADMIT' })]) {
      const raw = await t.settle(A.endpoint.request(B.endpoint.self, SECP2PSIP_METHOD, p));
      const d = decodeMessage(raw);
      assert.ok(d.ok && d.value.t === 'ERROR' && d.value.code === 'RPC_MALFORMED', JSON.stringify(d));
    }
  });

  it('... and counts them', async () => {
    const before = B.stats.malformed;
    await t.settle(A.endpoint.request(B.endpoint.self, SECP2PSIP_METHOD, new Uint8Array([1, 2, 3])));
    await t.settle(A.endpoint.request(B.endpoint.self, SECP2PSIP_METHOD, encodeMessage({ t: 'ADMIT' })));
    assert.equal(B.stats.malformed, before + 2);
  });
});
