/**
 * A WebSocket test client: decodes every frame with the protocol's own decoder (a frame that does not
 * decode fails the waiting test and the cleanup), keeps everything it received, and waits for messages.
 */
import {
  type ClientMessage,
  decodeServerMessage,
  encode,
  type ServerMessage,
  type Welcome,
} from "../../protocol";

export type Kind = ServerMessage["type"];
export type Msg<K extends Kind> = Extract<ServerMessage, { type: K }>;

export interface ConnectOptions {
  room?: string;
  nick?: string;
  since?: number;
  resume?: string;
  token?: string;
  /** Extra upgrade headers (Bun's WebSocket lets a test set Origin). */
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** Bun's WebSocket takes upgrade headers (Origin included); the DOM typings do not know that. */
type BunWebSocket = new (url: string | URL, options?: Bun.WebSocketOptions) => WebSocket;

/** Below bun's 5 s test timeout, so a wait fails with its own message first. */
export const WAIT_MS = 3000;

/** Clients made since the last cleanup, open or not, so the cleanup sees every undecodable frame. */
const made = new Set<TestClient>();

export class TestClient {
  /** Every decoded message, in arrival order. */
  readonly received: ServerMessage[] = [];
  /** Frames the protocol's decoder refused: each one is a failure of the server. */
  readonly undecodable: string[] = [];
  /** The close code the client saw. */
  readonly closed: Promise<number>;
  closeCode: number | undefined;
  /** Set by `connect` once the first welcome arrived. */
  welcome!: Welcome;
  private readonly ws: WebSocket;
  private readonly taken = new Set<number>();
  private readonly checks = new Set<() => void>();
  private readonly counts = new Map<Kind, number>();

  constructor(url: URL | string, headers?: Record<string, string>) {
    this.ws = new (WebSocket as unknown as BunWebSocket)(url, headers ? { headers } : undefined);
    made.add(this);
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener("close", (ev) => {
        this.closeCode = ev.code;
        resolve(ev.code);
        this.recheck();
      });
    });
    this.ws.addEventListener("message", (ev) => {
      const decoded = decodeServerMessage(ev.data as string | ArrayBuffer);
      if (decoded.ok) {
        this.received.push(decoded.value);
        this.counts.set(decoded.value.type, this.count(decoded.value.type) + 1);
      } else this.undecodable.push(`${decoded.error.message}: ${String(ev.data).slice(0, 200)}`);
      this.recheck();
    });
  }

  get readyState(): number {
    return this.ws.readyState;
  }

  /** Sends a protocol message, or a raw string / binary frame to test refusals. */
  send(message: ClientMessage | string | Uint8Array): void {
    this.ws.send(typeof message === "string" || message instanceof Uint8Array ? message : encode(message));
  }

  /** Sends `count` chats with ids and texts `${tag}-1`, `${tag}-2`, ... and returns their acks, in order. */
  async post(tag: string, count = 1): Promise<Array<Msg<"ack">>> {
    for (let i = 1; i <= count; i++) this.send({ type: "chat", text: `${tag}-${i}`, id: `${tag}-${i}` });
    await this.waitFor("ack", (a) => a.id === `${tag}-${count}`, WAIT_MS + count * 5);
    const acks = this.all("ack").filter((a) => a.id.startsWith(`${tag}-`));
    return [...new Map(acks.map((a) => [a.id, a])).values()];
  }

  /** The next message of `type` (matching `where`) that no earlier `next` returned, waiting if need be. */
  next<K extends Kind>(
    type: K,
    where: (m: Msg<K>) => boolean = () => true,
    timeoutMs = WAIT_MS,
  ): Promise<Msg<K>> {
    return this.until(
      () => {
        for (let i = 0; i < this.received.length; i++) {
          const m = this.received[i] as ServerMessage;
          if (!this.taken.has(i) && m.type === type && where(m as Msg<K>)) {
            this.taken.add(i);
            return m as Msg<K>;
          }
        }
        return undefined;
      },
      `next ${type}`,
      timeoutMs,
    );
  }

  /** The first message of `type` matching `where`, already received or still to come. */
  waitFor<K extends Kind>(
    type: K,
    where: (m: Msg<K>) => boolean = () => true,
    timeoutMs = WAIT_MS,
  ): Promise<Msg<K>> {
    return this.until(
      () => this.received.find((m): m is Msg<K> => m.type === type && where(m as Msg<K>)),
      `a ${type}`,
      timeoutMs,
    );
  }

  /** Resolves once `condition` holds over what was received. */
  async waitUntil(condition: (c: this) => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    await this.until(() => (condition(this) ? true : undefined), what, timeoutMs);
  }

  /** How many messages of `type` arrived: cheap enough for a condition checked on every frame. */
  count(type: Kind): number {
    return this.counts.get(type) ?? 0;
  }

  all<K extends Kind>(type: K): Array<Msg<K>> {
    return this.received.filter((m): m is Msg<K> => m.type === type);
  }

  /** Received chat messages of one room. */
  chats(room = this.welcome?.room): Array<Msg<"chat">> {
    return this.all("chat").filter((m) => m.room === room);
  }

  /** The close code, failing after `timeoutMs` if the server keeps the connection open. */
  async closing(timeoutMs = WAIT_MS): Promise<number> {
    await this.waitUntil((c) => c.closeCode !== undefined, "the connection to close", timeoutMs);
    return this.closeCode as number;
  }

  /** Closes from the client side and waits for the close to complete. */
  async close(code = 1000): Promise<number> {
    if (this.closeCode === undefined) this.ws.close(code);
    return this.closed;
  }

  private until<T>(find: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        if (this.undecodable.length > 0) {
          done();
          reject(new Error(`server sent a frame the protocol refuses: ${this.undecodable[0]}`));
          return;
        }
        const hit = find();
        if (hit !== undefined) {
          done();
          resolve(hit);
        } else if (this.closeCode !== undefined) {
          done();
          reject(new Error(`closed with ${this.closeCode} while waiting for ${what}; got ${this.summary()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms; got ${this.summary()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.checks.delete(check);
      };
      this.checks.add(check);
      check();
    });
  }

  private recheck(): void {
    for (const check of [...this.checks]) check();
  }

  private summary(): string {
    const last = this.received.slice(-8).map((m) => JSON.stringify(m).slice(0, 160));
    return `${this.received.length} messages, last: ${last.join(" | ") || "none"}`;
  }
}

export function connectUrl(base: URL, options: ConnectOptions = {}): URL {
  const url = new URL(`ws://${base.host}/ws`);
  for (const name of ["room", "nick", "since", "resume", "token"] as const) {
    const value = options[name];
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  return url;
}

/** Opens a client and waits for its welcome (in `client.welcome`). */
export async function connect(base: URL, options: ConnectOptions = {}): Promise<TestClient> {
  const client = new TestClient(connectUrl(base, options), options.headers);
  try {
    client.welcome = await client.next("welcome", () => true, options.timeoutMs ?? WAIT_MS);
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

/** For afterEach: closes every client still open, then fails if any saw a frame the protocol refuses. */
export async function closeAllClients(): Promise<void> {
  const clients = [...made];
  made.clear();
  const gaveUp = new Promise((resolve) => setTimeout(resolve, 2000).unref());
  await Promise.race([Promise.all(clients.map((c) => c.close())), gaveUp]);
  const bad = clients.flatMap((c) => c.undecodable);
  if (bad.length > 0) throw new Error(`server sent ${bad.length} undecodable frames, first: ${bad[0]}`);
}
