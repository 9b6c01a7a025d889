/**
 * The Deno entry's server: Deno.serve and Deno.upgradeWebSocket translated to the runtime-neutral
 * server (server/chat-server.ts), with a topic map for fan-out (Deno has no pub/sub), Deno's own
 * pings for liveness (`idleTimeout`), and MAX_PAYLOAD checked here (Deno takes frames of any size).
 */
import { CLOSE } from "../../protocol";
import { jsonLogger } from "../chat/log";
import { ChatServer, type RunningChatServer, type SocketState, type StartOptions } from "../chat-server";
import type { Config } from "../config";
import { refuse } from "../http";
import { createDenoEngine } from "./deno-engine";
import { PAGE_FILE, prebuiltPage } from "./deno-page";
import { DenoPeer } from "./deno-peer";
import { Topics } from "./topics";

export interface RunningDenoServer extends RunningChatServer {
  /** The topic map that stands for Bun's pub/sub (for tests). */
  readonly topics: Topics<DenoPeer>;
}

/** Bytes of a frame as it came over the wire (a text frame's UTF-8), measured only when it may be too large. */
function frameBytes(data: string | ArrayBuffer | Blob, max: number): number {
  if (typeof data !== "string") return data instanceof Blob ? data.size : data.byteLength;
  return data.length * 3 <= max ? data.length : new TextEncoder().encode(data).length;
}

export function startDenoServer(config: Config, options: StartOptions = {}): RunningDenoServer {
  const log = options.log ?? jsonLogger(config.logLevel, console.log);
  const topics = new Topics<DenoPeer>();
  const chat = new ChatServer(
    config,
    {
      createEngine: createDenoEngine,
      fanout: topics,
      page: prebuiltPage(PAGE_FILE, log),
      ownHeartbeat: true,
    },
    { ...options, log },
  );

  /** Wires one upgraded socket to the server; every handler catches, as one socket must not stop the rest. */
  function wire(socket: WebSocket, state: SocketState): void {
    socket.binaryType = "arraybuffer";
    const peer = new DenoPeer(socket, topics);
    socket.onopen = () => chat.opened(state, peer);
    socket.onmessage = (event: MessageEvent) => {
      if (frameBytes(event.data, config.maxPayload) > config.maxPayload) {
        socket.close(CLOSE.tooLarge, "frame too large");
        return;
      }
      chat.received(state, event.data);
    };
    socket.onclose = (event: CloseEvent) => {
      peer.left();
      // 0: the connection was lost without a close frame, which the protocol calls 1006.
      chat.closed(state, event.code === 0 ? 1006 : event.code);
    };
    socket.onerror = (event: Event) => {
      log.log("debug", "socket_error", { conn: state.conn?.id, error: (event as ErrorEvent).message });
    };
  }

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: config.host, port: config.port, onListen: () => {} },
      async (req, info) => {
        const answer = await chat.fetch(req, info.remoteAddr.hostname, (state) => {
          try {
            // Deno pings a socket silent for half of idleTimeout and closes it (1001) after the whole.
            const { socket, response } = Deno.upgradeWebSocket(req, {
              idleTimeout: config.heartbeatTimeoutSeconds,
            });
            wire(socket, state);
            return response;
          } catch {
            return false;
          }
        });
        return answer ?? refuse(500, "internal", "the server failed to answer");
      },
    );
  } catch (err) {
    throw chat.failedToListen(err);
  }
  chat.listening();

  return {
    url: new URL(`http://${config.host}:${server.addr.port}`),
    hub: chat.hub,
    ready: chat.ready,
    topics,
    stop: () => chat.stop(() => server.shutdown()),
  };
}
