/**
 * A bare WebSocket client over Bun.connect for the load generator: frames are parsed in place from
 * each read, so a delivery costs a few byte reads instead of a string, an event and a closure.
 * Loopback benchmarking only: no TLS, no extensions, the Sec-WebSocket-Accept is not checked.
 */
import type { Socket, TCPSocketConnectOptions } from "bun";

export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** What the generator needs of a client connection: this bare one, or the light one on Bun's WebSocket. */
export interface GenConn {
  /** Free for the owner (the generator's client record). */
  owner: unknown;
  readonly isOpen: boolean;
  sendText(text: string): void;
  close(code?: number): void;
  destroy(): void;
}

export interface WsHandlers {
  /** The 101 arrived; frames may be sent. */
  open(conn: GenConn): void;
  /** One complete message; its payload is `buf[start, end)`, valid only during the call. */
  frame(conn: GenConn, opcode: number, buf: Uint8Array, start: number, end: number): void;
  /** The upgrade was refused (HTTP status) or the socket failed or closed. */
  closed(conn: GenConn, reason: string, status?: number): void;
}

export interface WsTarget {
  hostname: string;
  port: number;
  /** Request target, e.g. `/ws?room=a&nick=b`. */
  path: string;
  /** Source address in 127.0.0.0/8, to spread connections over more than one port range. */
  localAddress?: string;
}

const encoder = new TextEncoder();
const HEADER_END = encoder.encode("\r\n\r\n");

/** xorshift32: masking keys need not be secret here, only varied. */
let maskState = 0x9e3779b9;
function nextMask(): number {
  maskState ^= maskState << 13;
  maskState ^= maskState >>> 17;
  maskState ^= maskState << 5;
  return maskState >>> 0;
}

/** One client frame (always masked, FIN set). */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setUint32(6, len);
  }
  const mask = nextMask();
  const m0 = mask >>> 24;
  const m1 = (mask >>> 16) & 0xff;
  const m2 = (mask >>> 8) & 0xff;
  const m3 = mask & 0xff;
  out[head] = m0;
  out[head + 1] = m1;
  out[head + 2] = m2;
  out[head + 3] = m3;
  const keys = [m0, m1, m2, m3];
  const base = head + 4;
  for (let i = 0; i < len; i++) out[base + i] = (payload[i] as number) ^ (keys[i & 3] as number);
  return out;
}

export class WsConn implements GenConn {
  owner: unknown;
  private socket: Socket<WsConn> | undefined;
  private upgraded = false;
  private ended = false;
  private pending: Uint8Array | undefined;
  private fragments: Uint8Array[] = [];
  private fragmentOpcode = 0;
  private outbox: Uint8Array[] = [];

  private constructor(private readonly handlers: WsHandlers) {}

  /** Opens the TCP connection and sends the upgrade; every outcome ends in `open` or `closed`. */
  static connect(target: WsTarget, handlers: WsHandlers, owner?: unknown): WsConn {
    const conn = new WsConn(handlers);
    conn.owner = owner;
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
    const request =
      `GET ${target.path} HTTP/1.1\r\nHost: ${target.hostname}:${target.port}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      "Sec-WebSocket-Version: 13\r\n\r\n";
    // `localAddress` works in Bun.connect (checked with ss) but is missing from its types.
    const options: TCPSocketConnectOptions<WsConn> & { localAddress?: string } = {
      hostname: target.hostname,
      port: target.port,
      localAddress: target.localAddress,
      data: conn,
      socket: {
        open(s: Socket<WsConn>) {
          s.data.socket = s;
          s.setNoDelay(true);
          s.data.write(encoder.encode(request));
        },
        data(s: Socket<WsConn>, chunk: Buffer) {
          s.data.receive(chunk);
        },
        drain(s: Socket<WsConn>) {
          s.data.flush();
        },
        close(s: Socket<WsConn>) {
          s.data.finish("socket closed");
        },
        error(s: Socket<WsConn>, err: Error) {
          s.data.finish(`socket error: ${err.message}`);
        },
        connectError(s: Socket<WsConn>, err: Error) {
          s.data.finish(`connect failed: ${err.message}`);
        },
      },
    };
    Bun.connect(options).catch((err: unknown) =>
      conn.finish(`connect failed: ${err instanceof Error ? err.message : String(err)}`),
    );
    return conn;
  }

  get isOpen(): boolean {
    return this.upgraded && !this.ended;
  }

  sendText(text: string): void {
    if (this.isOpen) this.write(encodeFrame(OPCODE.text, encoder.encode(text)));
  }

  /** Sends a close frame and ends the socket; `closed` follows. */
  close(code = 1000): void {
    if (!this.socket || this.ended) return;
    if (this.upgraded) this.write(encodeFrame(OPCODE.close, new Uint8Array([code >>> 8, code & 0xff])));
    this.socket.end();
  }

  /** Drops the socket at once, with no close handshake. */
  destroy(): void {
    this.socket?.terminate();
    this.finish("destroyed");
  }

  private write(bytes: Uint8Array): void {
    if (!this.socket) return;
    if (this.outbox.length > 0) {
      this.outbox.push(bytes);
      return;
    }
    const n = this.socket.write(bytes);
    if (n < bytes.length) this.outbox.push(bytes.subarray(Math.max(0, n)));
  }

  private flush(): void {
    while (this.socket && this.outbox.length > 0) {
      const head = this.outbox[0] as Uint8Array;
      const n = this.socket.write(head);
      if (n < head.length) {
        this.outbox[0] = head.subarray(Math.max(0, n));
        return;
      }
      this.outbox.shift();
    }
  }

  private finish(reason: string, status?: number): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers.closed(this, reason, status);
  }

  private receive(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.pending) {
      const joined = new Uint8Array(this.pending.length + chunk.length);
      joined.set(this.pending);
      joined.set(chunk, this.pending.length);
      buf = joined;
      this.pending = undefined;
    }
    let pos = 0;
    if (!this.upgraded) {
      const end = indexOfBytes(buf, HEADER_END);
      if (end < 0) {
        this.pending = buf;
        return;
      }
      const head = Buffer.from(buf.buffer, buf.byteOffset, end).toString("latin1");
      const status = Number(head.slice(9, 12));
      if (status !== 101) {
        this.finish(`upgrade refused: ${head.split("\r\n", 1)[0]}`, status);
        this.socket?.end();
        return;
      }
      this.upgraded = true;
      pos = end + 4;
      this.handlers.open(this);
    }
    const total = buf.length;
    while (pos + 2 <= total && !this.ended) {
      const b0 = buf[pos] as number;
      const b1 = buf[pos + 1] as number;
      let len = b1 & 0x7f;
      let head = 2;
      if (len === 126) {
        if (pos + 4 > total) break;
        len = ((buf[pos + 2] as number) << 8) | (buf[pos + 3] as number);
        head = 4;
      } else if (len === 127) {
        if (pos + 10 > total) break;
        len =
          (buf[pos + 6] as number) * 0x1000000 +
          (((buf[pos + 7] as number) << 16) | ((buf[pos + 8] as number) << 8) | (buf[pos + 9] as number));
        head = 10;
      }
      if (b1 & 0x80) head += 4; // servers never mask; tolerate it by skipping the key
      if (pos + head + len > total) break;
      this.onFrame(b0, buf, pos + head, pos + head + len);
      pos += head + len;
    }
    if (pos < total && !this.ended) this.pending = buf.slice(pos);
  }

  private onFrame(b0: number, buf: Uint8Array, start: number, end: number): void {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (opcode >= 8) {
      if (opcode === OPCODE.ping) this.write(encodeFrame(OPCODE.pong, buf.slice(start, end)));
      else if (opcode === OPCODE.close) {
        const code = end - start >= 2 ? ((buf[start] as number) << 8) | (buf[start + 1] as number) : 1005;
        this.close(code === 1005 ? 1000 : code);
        this.finish(`closed by server: ${code}`);
      }
      return;
    }
    if (!fin || opcode === OPCODE.continuation) {
      if (opcode !== OPCODE.continuation) this.fragmentOpcode = opcode;
      this.fragments.push(buf.slice(start, end));
      if (!fin) return;
      const whole = Buffer.concat(this.fragments);
      this.fragments = [];
      this.handlers.frame(this, this.fragmentOpcode, whole, 0, whole.length);
      return;
    }
    this.handlers.frame(this, opcode, buf, start, end);
  }
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
