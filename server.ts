/** The Bun entry: Bun.serve and Bun's sockets translated to the runtime-neutral server (server/chat-server.ts). */
import type { Server, ServerWebSocket } from "bun";
import { BunPeer } from "./server/bun-peer";
import { describeError, type Logger } from "./server/chat/log";
import {
  ChatServer,
  type RunningChatServer,
  type SocketState,
  type StartOptions,
} from "./server/chat-server";
import { answerCommandLine } from "./server/cli";
import type { Config } from "./server/config";
import { createEngine } from "./server/engines/choose";
import { refuse } from "./server/http";
import { browserPage } from "./server/page";
import { serveMain } from "./server/serve-main";

export type { StartOptions };

export interface RunningServer extends RunningChatServer {
  readonly server: Server<SocketState>;
}

/** Bun drops frames silently past its limit; the hub closes slow readers long before that. */
const BACKPRESSURE_FACTOR = 4;

function isLogger(x: StartOptions | Logger): x is Logger {
  return typeof (x as Logger).log === "function";
}

export function startServer(config: Config, options: StartOptions | Logger = {}): RunningServer {
  const opts: StartOptions = isLogger(options) ? { log: options } : options;
  let listener: Server<SocketState> | undefined;
  const chat = new ChatServer(
    config,
    {
      createEngine,
      page: browserPage,
      fanout: {
        publish(topic: string, data: string) {
          // 0: Bun dropped this frame for someone; close whoever is that far behind before the next one.
          if (listener?.publish(topic, data) === 0) chat.closeBacklogged();
        },
      },
    },
    opts,
  );
  const log = chat.log;

  let server: Server<SocketState>;
  try {
    server = Bun.serve<SocketState>({
      hostname: config.host,
      port: config.port,
      fetch(req, srv) {
        const peer = srv.requestIP(req)?.address ?? "unknown";
        // Bun calls `open` within `upgrade`, and answers the upgrade itself.
        return chat.fetch(req, peer, (data) => (srv.upgrade(req, { data }) ? undefined : false));
      },
      error(err) {
        log.log("error", "server_error", describeError(err));
        return refuse(500, "internal", "the server failed to answer");
      },
      websocket: {
        maxPayloadLength: config.maxPayload,
        backpressureLimit: config.slowConsumerBytes * BACKPRESSURE_FACTOR,
        idleTimeout: config.idleTimeoutSeconds,
        sendPings: true,
        perMessageDeflate: false,
        open(ws: ServerWebSocket<SocketState>) {
          chat.opened(ws.data, new BunPeer(ws));
        },
        message(ws, message) {
          chat.received(ws.data, message);
        },
        pong(ws) {
          chat.heard(ws.data);
        },
        close(ws, code) {
          chat.closed(ws.data, code);
        },
      },
    });
  } catch (err) {
    throw chat.failedToListen(err);
  }
  listener = server;
  chat.listening();

  return {
    url: new URL(`http://${config.host}:${server.port}`),
    hub: chat.hub,
    server,
    ready: chat.ready,
    stop: () => chat.stop(() => server.stop(true)),
  };
}

if (import.meta.main) {
  // --help, --version, or a flag no setting has: answered before anything starts.
  answerCommandLine(process.argv.slice(2), Bun.isStandaloneExecutable ? process.execPath : "bun server.ts");
  await serveMain({ start: (config) => startServer(config) });
}
