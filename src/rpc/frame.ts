/**
 * Length-prefixed framing for RPC over a byte stream: each frame is a 4-byte
 * big-endian body length followed by the body. The body length is bounded so
 * a peer cannot make us buffer without limit; a zero or oversized length is a
 * protocol violation after which the stream cannot be resynchronised.
 */

export const FRAME_HEADER_BYTES = 4;
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** Why a stream was abandoned. */
export type FrameError = 'oversized' | 'empty';

/** Prefix a body with its length. */
export function encodeFrame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Incremental decoder. Frames that arrive whole inside one chunk are handed
 * out as views into that chunk (no copy); a frame split across chunks is
 * assembled into one buffer allocated once at its announced size.
 */
export class FrameDecoder {
  /** May be raised once the peer is admitted (an inbound link allows only small frames before its HELLO). */
  maxFrameBytes: number;
  private readonly head = Buffer.alloc(FRAME_HEADER_BYTES);
  private headFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private failed: FrameError | null = null;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received of a frame that is not complete yet (non-zero at end of stream means a truncated frame). */
  get partialBytes(): number {
    return this.headFill + (this.body ? FRAME_HEADER_BYTES + this.bodyFill : 0);
  }

  /**
   * Feed a chunk; calls onFrame for each complete body, in order. Returns an
   * error once the stream is broken; every later call returns the same error.
   */
  push(chunk: Uint8Array, onFrame: (body: Buffer) => void): FrameError | null {
    if (this.failed) return this.failed;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    let off = 0;
    const end = buf.length;
    while (off < end) {
      if (this.body === null) {
        let len: number;
        if (this.headFill === 0 && end - off >= FRAME_HEADER_BYTES) {
          len = buf.readUInt32BE(off);
          off += FRAME_HEADER_BYTES;
        } else {
          const n = Math.min(FRAME_HEADER_BYTES - this.headFill, end - off);
          buf.copy(this.head, this.headFill, off, off + n);
          this.headFill += n;
          off += n;
          if (this.headFill < FRAME_HEADER_BYTES) return null;
          this.headFill = 0;
          len = this.head.readUInt32BE(0);
        }
        if (len === 0) return (this.failed = 'empty');
        if (len > this.maxFrameBytes) return (this.failed = 'oversized');
        if (end - off >= len) {
          onFrame(buf.subarray(off, off + len));
          off += len;
          continue;
        }
        this.body = Buffer.allocUnsafe(len);
        this.bodyFill = 0;
      }
      const n = Math.min(this.body.length - this.bodyFill, end - off);
      buf.copy(this.body, this.bodyFill, off, off + n);
      this.bodyFill += n;
      off += n;
      if (this.bodyFill === this.body.length) {
        const done = this.body;
        this.body = null;
        onFrame(done);
      }
    }
    return null;
  }
}
