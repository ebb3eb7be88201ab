/**
 * The STUN keep-alive of SIP outbound over UDP (RFC 5626 4.4.2 and 8.4): a
 * phone behind a NAT sends STUN Binding requests (RFC 5389) to the SIP port it
 * registered through, and the server answers on that same port, which keeps
 * the NAT binding open and tells the phone its public address and port
 * (XOR-MAPPED-ADDRESS). Only Binding requests without attributes that demand
 * understanding are answered; everything else that looks like STUN is dropped.
 * No I/O here: `stunBindingResponse` maps request bytes to response bytes.
 */
import { isIPv4, isIPv6 } from 'node:net';

const MAGIC = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;

/** Whether a datagram is a STUN message (RFC 5389 6: top two bits zero, the magic cookie, length a multiple of 4). */
export function isStun(buf: Uint8Array): boolean {
  if (buf.length < 20 || (buf[0] & 0xc0) !== 0) return false;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
  return b.readUInt32BE(4) === MAGIC && b.readUInt16BE(2) + 20 === buf.length && b.readUInt16BE(2) % 4 === 0;
}

/** The Binding success response to a Binding request from `address`:`port`, or undefined for anything else. */
export function stunBindingResponse(req: Uint8Array, address: string, port: number): Buffer | undefined {
  if (!isStun(req)) return undefined;
  const b = Buffer.from(req.buffer, req.byteOffset, req.length);
  if (b.readUInt16BE(0) !== BINDING_REQUEST) return undefined;
  // 7.3.1: comprehension-required attributes (type < 0x8000) we do not know make the request an error; a keep-alive
  // carries none, so such requests are dropped rather than answered.
  for (let at = 20; at + 4 <= b.length; ) {
    const type = b.readUInt16BE(at);
    const len = b.readUInt16BE(at + 2);
    if (type < 0x8000) return undefined;
    at += 4 + Math.ceil(len / 4) * 4;
  }
  const txid = b.subarray(8, 20);
  const v4 = isIPv4(address) ? address : address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : undefined;
  let value: Buffer;
  if (v4 && isIPv4(v4)) {
    value = Buffer.alloc(8);
    value[1] = 0x01;
    value.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
    const ip = Buffer.from(v4.split('.').map(Number));
    value.writeUInt32BE((ip.readUInt32BE(0) ^ MAGIC) >>> 0, 4);
  } else if (isIPv6(address)) {
    value = Buffer.alloc(20);
    value[1] = 0x02;
    value.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
    const ip = ipv6Bytes(address);
    const mask = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), txid]);
    for (let i = 0; i < 16; i++) value[4 + i] = ip[i] ^ mask[i];
  } else return undefined;
  const out = Buffer.alloc(20 + 4 + value.length);
  out.writeUInt16BE(BINDING_SUCCESS, 0);
  out.writeUInt16BE(4 + value.length, 2);
  out.writeUInt32BE(MAGIC, 4);
  txid.copy(out, 8);
  out.writeUInt16BE(XOR_MAPPED_ADDRESS, 20);
  out.writeUInt16BE(value.length, 22);
  value.copy(out, 24);
  return out;
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.split('::');
  const parts = (s: string | undefined) => (s ? s.split(':') : []);
  const h = parts(head);
  const t = tail === undefined ? [] : parts(tail);
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(Number.parseInt(groups[i] || '0', 16), i * 2);
  return out;
}
