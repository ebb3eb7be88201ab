/**
 * Message framing on stream transports (TCP, TLS): RFC 3261 section 18.3 and
 * 7.5, keep-alives of RFC 5626 section 3.5.1. The framer owns one connection's
 * receive buffer; it never holds more than the size limit of one message, so a
 * peer cannot make it grow without bound. After a framing error it stays
 * failed: the transport closes the connection.
 */
import type { Result } from '../util/errors.ts';
import type { SipMessage } from './message.ts';
import {
  contentLengthOf,
  copyBody,
  decodeHead,
  messageFrom,
  parseHead,
  type StartLine,
  validateMessage,
} from './parser.ts';

export type FrameEvent =
  /**
   * One complete message. `result` is the validated message or the reason it
   * is invalid; when invalid but well framed, `raw` holds the unvalidated
   * message so the transport can answer 400 (RFC 3261 section 8.2).
   */
  | { kind: 'message'; result: Result<SipMessage>; raw?: SipMessage }
  /** Double-CRLF keep-alive ping: answer with a single CRLF (RFC 5626 section 3.5.1). */
  | { kind: 'ping' }
  /** A lone CRLF: the pong answering our ping. */
  | { kind: 'pong' }
  /** Framing failed (oversized, no Content-Length, unparseable head): close the connection. */
  | { kind: 'error'; error: string };

export interface StreamFramerOptions {
  /** Largest message accepted, head and body (default 64 KiB). */
  maxMessageSize?: number;
  /** Run validateMessage on each message (default true). */
  validate?: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const CRLFCRLF = Buffer.from('\r\n\r\n');

export class StreamFramer {
  readonly maxMessageSize: number;
  private readonly validate: boolean;
  private data: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Where to resume the CRLFCRLF search. */
  private scanFrom = 0;
  /** Head of the message whose body is awaited. */
  private pending: { start: StartLine; headers: SipMessage['headers']; bodyStart: number; bodyLen: number } | undefined;
  /** The previous chunk ended in a lone CRLF already reported as a pong. */
  private loneCrlf = false;
  private failed: string | undefined;

  constructor(opts: StreamFramerOptions = {}) {
    this.maxMessageSize = opts.maxMessageSize ?? 64 * 1024;
    this.validate = opts.validate ?? true;
  }

  /** The framing error, once the framer has failed. */
  get error(): string | undefined {
    return this.failed;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    if (this.failed !== undefined) {
      events.push({ kind: 'error', error: this.failed });
      return events;
    }
    let off = 0;
    while (off < chunk.length) {
      // Never buffer more than one message's limit (plus one byte to detect the excess).
      const room = this.maxMessageSize + 1 - (this.end - this.start);
      const take = Math.min(room, chunk.length - off);
      this.append(chunk.subarray(off, off + take));
      off += take;
      this.process(events);
      if (this.failed !== undefined) break;
    }
    return events;
  }

  private append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const used = this.end - this.start;
    if (this.end + bytes.length > this.data.length) {
      if (used + bytes.length <= this.data.length && this.start > 0) {
        this.data.copyWithin(0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(
          Math.max(used + bytes.length, Math.min(this.data.length * 2, this.maxMessageSize + 1), 4096),
        );
        this.data.copy(grown, 0, this.start, this.end);
        this.data = grown;
      }
      this.scanFrom -= this.start;
      if (this.pending) this.pending.bodyStart -= this.start;
      this.start = 0;
      this.end = used;
    }
    this.data.set(bytes, this.end);
    this.end += bytes.length;
  }

  private fail(events: FrameEvent[], error: string): void {
    this.failed = error;
    events.push({ kind: 'error', error });
  }

  private process(events: FrameEvent[]): void {
    const d = this.data;
    for (;;) {
      if (!this.pending) {
        this.keepAlives(events);
        if (this.start === this.end) return;
        if (this.scanFrom < this.start) this.scanFrom = this.start;
        const i = d.indexOf(CRLFCRLF, this.scanFrom);
        // Bytes past `end` are stale, so a match must lie wholly before it.
        if (i < 0 || i + 4 > this.end) {
          if (this.end - this.start > this.maxMessageSize) this.fail(events, 'message too large');
          else this.scanFrom = Math.max(this.start, this.end - 3);
          return;
        }
        const bodyStart = i + 4;
        if (bodyStart - this.start > this.maxMessageSize) {
          this.fail(events, 'message too large');
          return;
        }
        const head = parseHead(decodeHead(d, this.start, i));
        if (!head.ok) {
          this.fail(events, head.error);
          return;
        }
        const cl = contentLengthOf(head.value.headers);
        // RFC 3261 section 18.3: on a stream, Content-Length is mandatory.
        if (cl === undefined) {
          this.fail(events, 'missing Content-Length');
          return;
        }
        if (typeof cl === 'string') {
          this.fail(events, cl);
          return;
        }
        if (bodyStart - this.start + cl > this.maxMessageSize) {
          this.fail(events, 'message too large');
          return;
        }
        this.pending = { start: head.value.start, headers: head.value.headers, bodyStart, bodyLen: cl };
      }
      const p = this.pending;
      if (this.end - p.bodyStart < p.bodyLen) return;
      const msg = messageFrom(p.start, p.headers, copyBody(d, p.bodyStart, p.bodyLen));
      this.start = p.bodyStart + p.bodyLen;
      this.scanFrom = this.start;
      this.pending = undefined;
      if (!this.validate) events.push({ kind: 'message', result: { ok: true, value: msg } });
      else {
        const v = validateMessage(msg);
        events.push(v.ok ? { kind: 'message', result: v } : { kind: 'message', result: v, raw: msg });
      }
      if (this.start === this.end) this.empty();
    }
  }

  /**
   * CRLFs before a start line: a double CRLF is a ping, a lone CRLF a pong
   * (RFC 5626 section 3.5.1); other CR/LF bytes there are ignored (RFC 3261
   * section 7.5). A ping split across two chunks is reported as a pong then a
   * ping, so a pong is never delayed waiting for more bytes.
   */
  private keepAlives(events: FrameEvent[]): void {
    const d = this.data;
    while (this.start < this.end) {
      const c = d[this.start];
      if (c !== CR && c !== LF) {
        this.loneCrlf = false;
        return;
      }
      const avail = this.end - this.start;
      if (avail >= 4 && d[this.start + 1] === LF && d[this.start + 2] === CR && d[this.start + 3] === LF && c === CR) {
        events.push({ kind: 'ping' });
        this.loneCrlf = false;
        this.start += 4;
      } else if (avail >= 2 && c === CR && d[this.start + 1] === LF) {
        if (this.loneCrlf) {
          // Second half of a ping whose first CRLF came in the previous chunk.
          events.push({ kind: 'ping' });
          this.loneCrlf = false;
        } else {
          events.push({ kind: 'pong' });
          // Nothing, or a lone CR, follows: this may be the first half of a ping.
          const rest = avail - 2;
          this.loneCrlf = rest === 0 || (rest === 1 && d[this.start + 2] === CR);
        }
        this.start += 2;
      } else if (c === CR && avail === 1) {
        return; // wait for the LF
      } else {
        this.start += 1;
      }
    }
    if (this.start === this.end) this.empty();
  }

  /**
   * Nothing is held: start over at the front, and give back a buffer grown for a large message, so an idle
   * connection costs little memory however big its last message was.
   */
  private empty(): void {
    this.start = 0;
    this.end = 0;
    this.scanFrom = 0;
    if (this.data.length > 4096) this.data = Buffer.alloc(0);
  }
}
