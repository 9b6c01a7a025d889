/** A v2 WebSocket client for tests: every frame decoded with v2's decoder (a frame that does not decode is kept aside). */
import { v2 } from "../../protocol";

type ServerMsg = v2.ServerMessageV2;
export type Of<K extends ServerMsg["type"]> = Extract<ServerMsg, { type: K }>;

const v2Clients = new Set<V2Client>();

/** What the room sends everyone: never the answer to a request. */
const BROADCASTS = new Set(["chat", "presence", "typing"]);

/** Closes every client made since the last call; answers the frames they could not decode. */
export async function closeAllV2Clients(): Promise<string[]> {
  await Promise.all([...v2Clients].map((c) => c.close()));
  const bad = [...v2Clients].flatMap((c) => c.undecodable);
  v2Clients.clear();
  return bad;
}

/** A v2 WebSocket client: every frame decoded with v2's decoder (a frame that does not decode fails the test). */
export class V2Client {
  readonly received: ServerMsg[] = [];
  readonly undecodable: string[] = [];
  readonly closed: Promise<number>;
  closeCode: number | undefined;
  private readonly ws: WebSocket;
  private readonly waiters = new Set<() => void>();

  constructor(url: URL) {
    this.ws = new WebSocket(url);
    v2Clients.add(this);
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener("close", (ev) => {
        this.closeCode = ev.code;
        resolve(ev.code);
        for (const w of this.waiters) w();
      });
    });
    this.ws.addEventListener("message", (ev) => {
      const decoded = v2.decodeServerMessageV2(ev.data as string);
      if (decoded.ok) this.received.push(decoded.value);
      else this.undecodable.push(`${decoded.error.message}: ${String(ev.data).slice(0, 200)}`);
      for (const w of this.waiters) w();
    });
  }

  send(message: v2.ClientMessageV2): void {
    this.ws.send(v2.encodeV2(message));
  }

  /** The first message of `type` received (now or later). */
  first<K extends ServerMsg["type"]>(type: K, timeoutMs = 3000): Promise<Of<K>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.received.find((m) => m.type === type);
        if (found) {
          done();
          resolve(found as Of<K>);
        } else if (this.closeCode !== undefined) {
          done();
          reject(new Error(`closed with ${this.closeCode} before a ${type}; got ${this.summary()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${type} within ${timeoutMs} ms; got ${this.summary()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The first message of `type` after the first `skip` of them (now or later). */
  nth<K extends ServerMsg["type"]>(type: K, index: number, timeoutMs = 3000): Promise<Of<K>> {
    return this.until((m): m is Of<K> => m.type === type, index, timeoutMs, type);
  }

  /** The `index`-th (from 0) received message matching `match` (now or later). */
  until<T extends ServerMsg>(
    match: (m: ServerMsg) => m is T,
    index = 0,
    timeoutMs = 3000,
    what = "message",
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.received.filter(match)[index];
        if (found) {
          done();
          resolve(found);
        } else if (this.closeCode !== undefined) {
          done();
          reject(new Error(`closed with ${this.closeCode} before ${what} #${index}; got ${this.summary()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} #${index} within ${timeoutMs} ms; got ${this.summary()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Sends and waits for the answer: the next message after those received so far that is not a broadcast (chat, presence, typing). */
  async ask(message: v2.ClientMessageV2, timeoutMs = 3000): Promise<ServerMsg> {
    const before = this.received.length;
    this.send(message);
    const isAnswer = (m: ServerMsg): m is ServerMsg =>
      !BROADCASTS.has(m.type) && this.received.indexOf(m) >= before;
    return this.until(isAnswer, 0, timeoutMs, "an answer");
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(1000);
    await Promise.race([this.closed, Bun.sleep(1000)]);
  }

  private summary(): string {
    return (
      JSON.stringify(this.received.map((m) => m.type)) + (this.undecodable.length ? " + undecodable" : "")
    );
  }
}

export function v2Url(base: URL, query: Record<string, string> = {}): URL {
  const url = new URL(`ws://${base.host}/ws`);
  url.searchParams.set("v", "2");
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url;
}

export async function connectV2(
  base: URL,
  query: Record<string, string> = {},
): Promise<[V2Client, Of<"welcome">]> {
  const client = new V2Client(v2Url(base, query));
  return [client, await client.first("welcome")];
}
