/**
 * The limit: Bun's own pub/sub forwarding each text frame unchanged to everyone in the room,
 * sender included; no JSON, no storage, no checks. Also a raw Bun.serve for the HTTP scenario:
 * fixed answers of the same shape as ours, and our page's bytes served from memory.
 */
import type { ServerWebSocket } from "bun";
import { browserPage } from "../../server/page";

const rooms = new Map<string, number>();
const startedAt = Date.now();
let connections = 0;

/** The same bytes as our page (built once by our own builder), so `/` compares serving, not size. */
const PAGE = await browserPage().then(
  (r) => r.text(),
  () => "<!doctype html><title>chat</title>",
);
const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { headers: JSON_HEADERS });
}

function roomList(): Array<{ room: string; users: number }> {
  return [...rooms]
    .map(([room, users]) => ({ room, users }))
    .sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1));
}

const server = Bun.serve<{ room: string }>({
  hostname: process.env.HOST ?? "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch(req, srv) {
    const url = new URL(req.url);
    if (url.pathname === "/ws") {
      const room = url.searchParams.get("room") || "default";
      if (srv.upgrade(req, { data: { room } })) return undefined;
      return new Response("upgrade failed", { status: 400 });
    }
    if (url.pathname === "/healthz") {
      return json({
        status: "ok",
        connections,
        rooms: rooms.size,
        uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
      });
    }
    if (url.pathname === "/api/rooms") return json(roomList());
    if (url.pathname === "/")
      return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
    return new Response("not found", { status: 404 });
  },
  websocket: {
    perMessageDeflate: false,
    open(ws: ServerWebSocket<{ room: string }>) {
      connections++;
      rooms.set(ws.data.room, (rooms.get(ws.data.room) ?? 0) + 1);
      ws.subscribe(ws.data.room);
    },
    message(ws, message) {
      server.publish(ws.data.room, message);
    },
    close(ws) {
      connections--;
      const n = (rooms.get(ws.data.room) ?? 1) - 1;
      if (n === 0) rooms.delete(ws.data.room);
      else rooms.set(ws.data.room, n);
    },
  },
});

console.log(`listening on http://${server.hostname}:${server.port}`);
process.on("SIGTERM", () => process.exit(0));
