/**
 * The few Deno APIs the Deno entry uses, declared for `tsc` (which type-checks with Bun's types).
 * Deno itself never reads this file: nothing imports it, and its own declarations are the real ones.
 */
declare namespace Deno {
  interface NetAddr {
    transport: "tcp" | "udp";
    hostname: string;
    port: number;
  }
  interface ServeHandlerInfo {
    remoteAddr: NetAddr;
  }
  interface ServeOptions {
    hostname?: string;
    port?: number;
    onListen?: (addr: NetAddr) => void;
  }
  interface HttpServer<A = NetAddr> {
    readonly addr: A;
    /** Stops listening and resolves once every request in flight is answered. */
    shutdown(): Promise<void>;
  }
  function serve(
    options: ServeOptions,
    handler: (req: Request, info: ServeHandlerInfo) => Response | Promise<Response>,
  ): HttpServer<NetAddr>;
  interface UpgradeWebSocketOptions {
    protocol?: string;
    /** Seconds: a socket silent for half of it is pinged; one silent for all of it is closed (1001). */
    idleTimeout?: number;
  }
  function upgradeWebSocket(
    req: Request,
    options?: UpgradeWebSocketOptions,
  ): { socket: WebSocket; response: Response };
}
