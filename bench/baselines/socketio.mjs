/**
 * The same chat on Socket.IO (WebSocket transport only): `chat` events in, a stamped `chat` event
 * with the room's next seq out to the room (sender included); `welcome` after joining.
 */
import http from "node:http";
import { Server } from "socket.io";

/** @type {Map<string, number>} */
const seqs = new Map();
let guests = 0;

const server = http.createServer();
const io = new Server(server, { transports: ["websocket"], serveClient: false, perMessageDeflate: false });

io.on("connection", (socket) => {
  const query = socket.handshake.query;
  const room = typeof query.room === "string" && query.room ? query.room : "default";
  const nick = typeof query.nick === "string" && query.nick ? query.nick : `guest-${++guests}`;
  socket.join(room);
  socket.emit("welcome", { room, nick, users: [], history: [], lastSeq: seqs.get(room) ?? 0 });
  socket.on("chat", (msg) => {
    if (!msg || typeof msg.text !== "string" || msg.text.length === 0) {
      socket.emit("error_message", { code: "bad_message" });
      return;
    }
    const seq = (seqs.get(room) ?? 0) + 1;
    seqs.set(room, seq);
    io.to(room).emit("chat", {
      type: "chat",
      room,
      seq,
      nick,
      text: msg.text,
      sentAt: new Date().toISOString(),
    });
  });
});

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  const { address, port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  console.log(`listening on http://${address}:${port}`);
});
process.on("SIGTERM", () => process.exit(0));
