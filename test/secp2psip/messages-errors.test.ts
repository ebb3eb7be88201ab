/**
 * SECP2PSIP ERROR codes on the wire (src/secp2psip/messages.ts WIRE_ERROR):
 * an explicit numbered table, unknown numbers decoded to a generic refusal,
 * and the detail carried without the code's message in front.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import {
  decodeMessage,
  encodeMessage,
  GENERIC_REFUSAL,
  WIRE_ERROR,
  wireErrorCode,
  wireErrorNumber,
} from '../../src/secp2psip/messages.ts';
import { ERRORS, type ErrorCode, OverlayError } from '../../src/util/errors.ts';

describe('SECP2PSIP wire error codes', () => {
  it("numbers each code once; every code but the SIP layer's own can travel, those go as a generic refusal", () => {
    const numbers = Object.values(WIRE_ERROR);
    assert.equal(new Set(numbers).size, numbers.length, 'no number reused');
    for (const code of Object.keys(ERRORS) as ErrorCode[])
      assert.equal(wireErrorCode(wireErrorNumber(code)), code.startsWith('SIP_') ? GENERIC_REFUSAL : code, code);
  });

  it('sends the number, and decodes a number it does not know (a newer peer) to a generic refusal', () => {
    const wire = cborDecode(encodeMessage({ t: 'ERROR', code: 'USER_UNKNOWN', reason: 'no such user' })) as {
      code: unknown;
    };
    assert.equal(wire.code, WIRE_ERROR.USER_UNKNOWN);
    for (const n of [999, 2 ** 31]) {
      const d = decodeMessage(cborEncode({ t: 'ERROR', code: n, reason: 'from the future' }));
      assert.ok(d.ok && d.value.t === 'ERROR', JSON.stringify(d));
      assert.equal(d.value.code, GENERIC_REFUSAL);
      assert.equal(d.value.reason, 'from the future');
    }
    for (const bad of ['USER_UNKNOWN', -1, 1.5, null]) {
      const d = decodeMessage(cborEncode({ t: 'ERROR', code: bad, reason: '' }));
      assert.equal(d.ok, false, `code ${String(bad)} is not a wire number`);
    }
  });

  it("carries the detail alone, so the receiver's error does not say the code's message twice", () => {
    const thrown = new OverlayError('USER_NAME_TAKEN', "'bob' is already registered with another key");
    const d = decodeMessage(encodeMessage({ t: 'ERROR', code: thrown.code, reason: thrown.message }));
    assert.ok(d.ok && d.value.t === 'ERROR');
    assert.equal(d.value.reason, "'bob' is already registered with another key");
    assert.equal(
      new OverlayError(d.value.code, d.value.reason).message,
      "name already registered with another key: 'bob' is already registered with another key",
    );
  });
});
