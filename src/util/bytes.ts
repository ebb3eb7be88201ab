/**
 * Below this length a JavaScript loop is cheaper than the call into C++ that Buffer.compare makes; above it
 * (signatures, payloads, paths of a few hundred bytes) memcmp wins by far.
 */
const NATIVE_FROM = 48;

/** Same length and the same bytes (not constant-time: for public data such as keys and ids). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  const n = a.length;
  if (n !== b.length) return false;
  if (n >= NATIVE_FROM)
    // Buffer.compare takes any Uint8Array and compares exactly its view (byteOffset, length), not the whole
    // ArrayBuffer underneath.
    return Buffer.compare(a, b) === 0;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
