/** A TCP relay in front of a server that a test can shut, cut and mute: a network drop on demand. */
import net from "node:net";

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export class TcpGate {
  private readonly pairs = new Set<Pair>();
  private shutNow = false;
  private muted = false;

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
  ) {
    server.on("connection", (client) => this.relay(client));
  }

  /** Listens on a free port of 127.0.0.1 and relays to `target`. */
  static async start(target: { host: string; port: number }): Promise<TcpGate> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new TcpGate(server, target);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Cuts every relayed connection and closes new ones at once, as an unreachable network would. */
  shut(): void {
    this.shutNow = true;
    this.cut();
  }

  open(): void {
    this.shutNow = false;
    this.muted = false;
  }

  /** Drops what the server sends while both sides stay open: a path that went dead silently. */
  mute(): void {
    this.muted = true;
  }

  /** Destroys every relayed connection; new ones are still accepted unless shut. */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.shut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket): void {
    if (this.shutNow) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (!this.muted) client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on("error", end);
      socket.on("close", end);
    }
  }
}
