/**
 * Hand-made WebSocket clients for the attack benchmark (loopback only, no TLS, no extensions, the
 * Sec-WebSocket-Accept is not checked).
 *
 * - `RawWs` (over Bun.connect) parses frames as a stream: a payload is never buffered, only its
 *   first bytes are kept (enough to tell a `history` from an `error`), so reading megabytes of
 *   history costs the generator almost nothing beyond the kernel copy.
 * - `connectPaused` (over node:net) does the upgrade and then stops reading: the kernel's receive
 *   buffer fills and the server has to hold whatever else it sends. Bun.connect's `data` handler
 *   would keep draining the socket, so a `node:net` socket with `pause()` is used instead.
 */
import net from "node:net";
import type { Socket } from "bun";

const encoder = new TextEncoder();

/** A fixed masking key: servers only unmask, so it need not be unpredictable on loopback. */
const MASK = [0x37, 0xfa, 0x21, 0x3d] as const;

/** One masked client frame with FIN set. */
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
    new DataView(out.buffer).setUint32(head - 4, len);
  }
  out.set(MASK, head);
  const base = head + 4;
  for (let i = 0; i < len; i++) out[base + i] = (payload[i] as number) ^ (MASK[i & 3] as number);
  return out;
}

export function textFrame(text: string): Uint8Array {
  return encodeFrame(1, encoder.encode(text));
}

const CLOSE_1000 = encodeFrame(8, new Uint8Array([0x03, 0xe8]));

export function upgradeRequest(port: number, path: string): string {
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  );
}

export interface RawWsHandlers {
  /** The 101 arrived; frames may be sent. */
  open?(ws: RawWs): void;
  /** A complete data message: its length in bytes and its first bytes (up to 64) as latin1. */
  message?(ws: RawWs, head: string, length: number): void;
  /** Always called exactly once: refused upgrade (with the HTTP status), socket closed or failed. */
  closed?(ws: RawWs, reason: string, status?: number): void;
}

const DATA_HEAD = 64;

export class RawWs {
  /** Free for the caller. */
  tag = 0;
  bytesIn = 0;
  private socket: Socket<RawWs> | undefined;
  private upgraded = false;
  private ended = false;
  private closing = false;
  private http = "";
  private outbox: Uint8Array[] = [];
  // frame parser state
  private readonly hdr = new Uint8Array(14);
  private hdrLen = 0;
  private inPayload = false;
  private remaining = 0;
  private fin = false;
  private opcode = 0;
  private msgOpcode = 0;
  private msgLength = 0;
  private readonly head = new Uint8Array(125);
  private headLen = 0;
  private headCap = DATA_HEAD;
  private serverClose: number | undefined;

  private constructor(private readonly handlers: RawWsHandlers) {}

  static connect(port: number, path: string, handlers: RawWsHandlers, tag = 0): RawWs {
    const ws = new RawWs(handlers);
    ws.tag = tag;
    const request = encoder.encode(upgradeRequest(port, path));
    Bun.connect<RawWs>({
      hostname: "127.0.0.1",
      port,
      data: ws,
      socket: {
        open(s) {
          s.data.socket = s;
          if (s.data.closing) {
            s.terminate();
            s.data.finish("closed before it opened");
            return;
          }
          s.setNoDelay(true);
          s.data.write(request);
        },
        data(s, chunk) {
          s.data.receive(chunk);
        },
        drain(s) {
          s.data.flush();
        },
        end(s) {
          s.end();
        },
        close(s, err) {
          s.data.finish(
            err
              ? `socket error: ${err.message}`
              : s.data.serverClose !== undefined
                ? `closed by server ${s.data.serverClose}`
                : "closed",
          );
        },
        error(s, err) {
          s.data.finish(`socket error: ${err.message}`);
        },
        connectError(s, err) {
          s.data.finish(`connect failed: ${err.message}`);
        },
      },
    }).catch((err: unknown) => ws.finish(`connect failed: ${err instanceof Error ? err.message : err}`));
    return ws;
  }

  get isOpen(): boolean {
    return this.upgraded && !this.ended && !this.closing;
  }

  /** Sends a prepared frame (see `textFrame`). */
  send(frame: Uint8Array): void {
    if (this.isOpen) this.write(frame);
  }

  /** Close frame (when upgraded) and FIN; `closed` follows when the socket is gone. */
  close(): void {
    if (this.ended || this.closing) return;
    this.closing = true;
    if (!this.socket) return; // connect still pending: finished by terminate() or its outcome
    if (this.upgraded) this.write(CLOSE_1000);
    this.socket.end();
  }

  /** Drops the socket at once. */
  terminate(reason = "terminated"): void {
    this.socket?.terminate();
    this.finish(reason);
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
      const first = this.outbox[0] as Uint8Array;
      const n = this.socket.write(first);
      if (n < first.length) {
        this.outbox[0] = first.subarray(Math.max(0, n));
        return;
      }
      this.outbox.shift();
    }
  }

  private finish(reason: string, status?: number): void {
    if (this.ended) return;
    this.ended = true;
    this.outbox = [];
    this.handlers.closed?.(this, reason, status);
  }

  private receive(chunk: Uint8Array): void {
    if (this.ended) return;
    this.bytesIn += chunk.length;
    let pos = 0;
    if (!this.upgraded) {
      const before = this.http.length;
      this.http += Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).toString("latin1");
      const end = this.http.indexOf("\r\n\r\n");
      if (end < 0) {
        if (this.http.length > 16384) this.terminate("oversized HTTP response");
        return;
      }
      const status = Number(this.http.slice(9, 12));
      if (status !== 101) {
        this.finish(`HTTP ${status}`, status); // before end(), which may report the close at once
        this.socket?.end();
        return;
      }
      this.upgraded = true;
      pos = end + 4 - before;
      this.http = "";
      this.handlers.open?.(this);
    }
    const buf = chunk;
    const total = buf.length;
    while (pos < total && !this.ended) {
      if (!this.inPayload) {
        this.hdr[this.hdrLen++] = buf[pos++] as number;
        if (this.hdrLen < 2) continue;
        const b1 = this.hdr[1] as number;
        const len7 = b1 & 0x7f;
        const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
        if (this.hdrLen < need) continue;
        let len = len7;
        if (len7 === 126) len = ((this.hdr[2] as number) << 8) | (this.hdr[3] as number);
        else if (len7 === 127)
          len =
            (this.hdr[6] as number) * 0x1000000 +
            (((this.hdr[7] as number) << 16) | ((this.hdr[8] as number) << 8) | (this.hdr[9] as number));
        const b0 = this.hdr[0] as number;
        this.fin = (b0 & 0x80) !== 0;
        this.opcode = b0 & 0x0f;
        this.hdrLen = 0;
        this.remaining = len;
        this.inPayload = true;
        if (this.opcode >= 8) {
          this.headLen = 0;
          this.headCap = 125;
        } else if (this.opcode !== 0) {
          this.msgOpcode = this.opcode;
          this.msgLength = 0;
          this.headLen = 0;
          this.headCap = DATA_HEAD;
        }
        if (len === 0) this.endFrame();
        continue;
      }
      const take = Math.min(this.remaining, total - pos);
      if (this.headLen < this.headCap) {
        const n = Math.min(take, this.headCap - this.headLen);
        this.head.set(buf.subarray(pos, pos + n), this.headLen);
        this.headLen += n;
      }
      if (this.opcode < 8) this.msgLength += take;
      pos += take;
      this.remaining -= take;
      if (this.remaining === 0) this.endFrame();
    }
  }

  private endFrame(): void {
    this.inPayload = false;
    const op = this.opcode;
    if (op === 9) {
      this.write(encodeFrame(10, this.head.slice(0, this.headLen)));
    } else if (op === 8) {
      this.serverClose =
        this.headLen >= 2 ? ((this.head[0] as number) << 8) | (this.head[1] as number) : 1005;
      if (!this.closing) {
        this.closing = true;
        this.write(CLOSE_1000);
        this.socket?.end();
      }
    } else if (op < 8 && this.fin) {
      const head = Buffer.from(this.head.buffer, 0, this.headLen).toString("latin1");
      if (this.msgOpcode === 1 || this.msgOpcode === 2) this.handlers.message?.(this, head, this.msgLength);
    }
  }
}

/** A socket that did the upgrade and then stopped reading. */
export interface PausedSocket {
  socket: net.Socket;
  /** Set once the socket errored or closed (for example because the server dropped it). */
  gone: string | undefined;
}

/** Upgrades over node:net, then pauses: resolves with the socket, or with the reason it failed. */
export function connectPaused(
  port: number,
  path: string,
  timeoutMs: number,
): Promise<PausedSocket | { refused: string }> {
  return new Promise((resolve) => {
    let http = "";
    let settled = false;
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (value: PausedSocket | { refused: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    const timer = setTimeout(() => {
      socket.destroy();
      done({ refused: "timeout" });
    }, timeoutMs);
    const paused: PausedSocket = { socket, gone: undefined };
    const onData = (chunk: Buffer) => {
      http += chunk.toString("latin1");
      const end = http.indexOf("\r\n\r\n");
      if (end < 0) return;
      // Whatever followed the headers (the start of the welcome) is simply dropped.
      socket.pause();
      socket.off("data", onData);
      const status = Number(http.slice(9, 12));
      if (status !== 101) {
        socket.destroy();
        done({ refused: `HTTP ${status}` });
      } else done(paused);
    };
    socket.setNoDelay(true);
    socket.on("connect", () => socket.write(upgradeRequest(port, path)));
    socket.on("data", onData);
    socket.on("error", (err) => {
      paused.gone ??= `error: ${err.message}`;
      done({ refused: `error: ${err.message}` });
    });
    socket.on("close", () => {
      paused.gone ??= "closed";
      done({ refused: "closed" });
    });
  });
}
