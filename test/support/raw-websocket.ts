/**
 * A WebSocket client on a bare TCP socket that can stop reading, to play a slow consumer; it parses
 * the server's (unmasked) frames itself, so it sees exactly what arrived, close frame included.
 */
import net from "node:net";

export interface RawFrame {
  opcode: number;
  payload: Buffer;
}

export class RawWebSocket {
  private raw = Buffer.alloc(0);
  readonly ended: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.raw = Buffer.concat([this.raw, chunk]);
    });
    socket.on("error", () => {});
    this.ended = new Promise((resolve) => socket.on("close", () => resolve()));
  }

  /**
   * Opens `GET /ws?query` and resolves once the server has answered 101; `localAddress` picks the
   * source address (another 127.0.0.x plays another client host).
   */
  static async open(
    base: URL,
    query: Record<string, string>,
    options: { localAddress?: string } = {},
  ): Promise<RawWebSocket> {
    const socket = net.connect({
      port: Number(base.port),
      host: base.hostname,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const client = new RawWebSocket(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    socket.write(
      [
        `GET /ws?${new URLSearchParams(query)} HTTP/1.1`,
        `Host: ${base.host}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${btoa("0123456789abcdef")}`,
        "Sec-WebSocket-Version: 13",
        "",
        "",
      ].join("\r\n"),
    );
    const deadline = Date.now() + 5000;
    while (!client.raw.includes("\r\n\r\n")) {
      if (Date.now() > deadline) throw new Error("no answer to the upgrade");
      await Bun.sleep(5);
    }
    if (!client.raw.subarray(0, 12).toString().includes("101")) throw new Error("upgrade refused");
    return client;
  }

  /** Stops reading: the kernel buffers fill, then the server's send buffer grows. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Sends one text frame, masked as a client must. */
  sendText(text: string): void {
    const payload = Buffer.from(text);
    const n = payload.length;
    const header = n < 126 ? Buffer.alloc(2) : n < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
    header[0] = 0x81;
    if (n < 126) header[1] = 0x80 | n;
    else if (n < 65536) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(n, 2);
    } else {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(n), 2);
    }
    const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
    const masked = Buffer.alloc(n);
    for (let i = 0; i < n; i++) masked[i] = (payload[i] as number) ^ (mask[i % 4] as number);
    this.socket.write(Buffer.concat([header, mask, masked]));
  }

  /** Every complete frame received so far, after the upgrade answer. */
  frames(): RawFrame[] {
    const frames: RawFrame[] = [];
    let at = this.raw.indexOf("\r\n\r\n") + 4;
    while (at + 2 <= this.raw.length) {
      const opcode = (this.raw[at] as number) & 0x0f;
      let length = (this.raw[at + 1] as number) & 0x7f;
      let header = 2;
      if (length === 126) {
        length = this.raw.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        length = Number(this.raw.readBigUInt64BE(at + 2));
        header = 10;
      }
      if (at + header + length > this.raw.length) break;
      frames.push({ opcode, payload: this.raw.subarray(at + header, at + header + length) });
      at += header + length;
    }
    return frames;
  }
}
