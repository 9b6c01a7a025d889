/**
 * The "light client": the same surface as WsConn, on Bun's own `WebSocket`. It costs the generator
 * more per frame (a string and an event each), but it is what most users' clients look like, so the
 * server's CPU per delivery is measured against it too (the server does the same work either way,
 * unless the client's read pattern changes how the server's writes batch).
 */
import type { GenConn, WsHandlers, WsTarget } from "./ws-client";

const encoder = new TextEncoder();

export class LightConn implements GenConn {
  owner: unknown;
  private ws: WebSocket | undefined;
  private open = false;
  private ended = false;

  private constructor(private readonly handlers: WsHandlers) {}

  static connect(target: WsTarget, handlers: WsHandlers, owner?: unknown): LightConn {
    const conn = new LightConn(handlers);
    conn.owner = owner;
    // Bun's WebSocket has no source-address option; every light client comes from 127.0.0.1.
    const ws = new WebSocket(`ws://${target.hostname}:${target.port}${target.path}`);
    conn.ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      conn.open = true;
      handlers.open(conn);
    };
    ws.onmessage = (e: MessageEvent) => {
      const bytes =
        typeof e.data === "string" ? encoder.encode(e.data) : new Uint8Array(e.data as ArrayBuffer);
      handlers.frame(conn, typeof e.data === "string" ? 1 : 2, bytes, 0, bytes.length);
    };
    ws.onclose = (e: CloseEvent) => conn.finish(`socket closed (${e.code})`);
    ws.onerror = () => conn.finish("socket error");
    return conn;
  }

  get isOpen(): boolean {
    return this.open && !this.ended;
  }

  sendText(text: string): void {
    if (this.isOpen) this.ws?.send(text);
  }

  close(code = 1000): void {
    if (!this.ended) this.ws?.close(code);
  }

  destroy(): void {
    // Bun's WebSocket can drop the socket without a close handshake; the DOM type does not say so.
    (this.ws as (WebSocket & { terminate?: () => void }) | undefined)?.terminate?.();
    this.finish("destroyed");
  }

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.open = false;
    this.handlers.closed(this, reason);
  }
}
