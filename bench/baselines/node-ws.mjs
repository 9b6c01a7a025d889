/**
 * The chat as most Node tutorials write it, with `ws`: JSON in, a stamped JSON message with the
 * room's next seq out to everyone in the room (sender included), history kept in memory for
 * `since`. Speaks enough of our protocol (welcome, chat, error) for the same generator.
 */
import http from "node:http";
import { WebSocketServer } from "ws";

const HISTORY_MAX = 500;
/** @type {Map<string, {members: Set<import("ws").WebSocket>, seq: number, history: object[]}>} */
const rooms = new Map();
let guests = 0;

const server = http.createServer((_req, res) => {
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found");
});
const wss = new WebSocketServer({ server, path: "/ws", perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  const query = new URL(req.url ?? "/", "http://localhost").searchParams;
  const name = query.get("room") || "default";
  const nick = query.get("nick") || `guest-${++guests}`;
  const since = query.has("since") ? Number(query.get("since")) : undefined;
  let room = rooms.get(name);
  if (!room) {
    room = { members: new Set(), seq: 0, history: [] };
    rooms.set(name, room);
  }
  room.members.add(ws);
  const history = since === undefined ? room.history.slice(-50) : room.history.filter((m) => m.seq > since);
  ws.send(JSON.stringify({ type: "welcome", room: name, nick, users: [], history, lastSeq: room.seq }));

  ws.on("message", (data, isBinary) => {
    let msg;
    try {
      msg = isBinary ? undefined : JSON.parse(data.toString());
    } catch {
      msg = undefined;
    }
    if (msg?.type !== "chat" || typeof msg.text !== "string" || msg.text.length === 0) {
      ws.send(JSON.stringify({ type: "error", code: "bad_message", message: "expected a chat message" }));
      return;
    }
    const out = {
      type: "chat",
      room: name,
      seq: ++room.seq,
      nick,
      text: msg.text,
      sentAt: new Date().toISOString(),
    };
    room.history.push(out);
    if (room.history.length > HISTORY_MAX) room.history.shift();
    const frame = JSON.stringify(out);
    for (const member of room.members) if (member.readyState === 1) member.send(frame);
  });

  ws.on("close", () => {
    room.members.delete(ws);
  });
});

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  const { address, port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  console.log(`listening on http://${address}:${port}`);
});
process.on("SIGTERM", () => process.exit(0));
