/** The browser page: reads room and nick from its URL, runs a ChatClient and draws what it reports. */
import {
  DEFAULT_ROOM,
  isValidNick,
  isValidRoom,
  nickKey,
  normalizeNick,
  normalizeRoom,
} from "../../protocol";
import { ChatClient } from "../chat-client";
import { HELP } from "../commands";
import { wireComposer } from "./composer";
import { byId } from "./dom";
import { HeadlineView } from "./headline-view";
import { OutboxView } from "./outbox-view";
import { TimelineView } from "./timeline-view";
import { TypingView } from "./typing-view";
import { UserListView } from "./user-list-view";

const params = new URLSearchParams(location.search);
const problems: string[] = [];
let room = normalizeRoom(params.get("room") || DEFAULT_ROOM);
if (!isValidRoom(room)) {
  problems.push(`"${room}" is not a room name (letters, digits, _ - .); you are in ${DEFAULT_ROOM} instead`);
  room = DEFAULT_ROOM;
}
let nick = params.get("nick") ? normalizeNick(params.get("nick") as string) : undefined;
if (nick !== undefined && !isValidNick(nick)) {
  problems.push(`"${nick}" is not a nickname (letters, digits, _ - ., no spaces); the server picks one`);
  nick = undefined;
}
/** Keep the nickname in the URL once the reader chose one, so a reload keeps it. */
let nickChosen = nick !== undefined;

const client = new ChatClient({ url: location.href, room, nick, autoConnect: false });
const isMe = (name: string) => client.nickname !== undefined && nickKey(name) === nickKey(client.nickname);

const scroller = byId("scroller");
const input = byId<HTMLInputElement>("inputline");
const roomName = byId("room-name");
const meName = byId("me-name");
const headline = new HeadlineView(byId("headline"), byId<HTMLButtonElement>("reconnect"));
const timeline = new TimelineView(
  {
    scroller,
    list: byId<HTMLOListElement>("chat"),
    older: byId<HTMLButtonElement>("older"),
    jump: byId<HTMLButtonElement>("jump"),
  },
  isMe,
  (before) => client.history(before),
);
const users = new UserListView(byId<HTMLUListElement>("userlist"), byId("user-count"));
const typing = new TypingView(byId("typing"));
const outbox = new OutboxView(byId<HTMLOListElement>("outbox"), {
  retry: (id) => client.retry(id),
  discard: (id) => client.discard(id),
});

let unread = 0;
function showTitle(): void {
  document.title = `${unread > 0 ? `(${unread}) ` : ""}#${client.room} · chat`;
}
function showMe(): void {
  meName.textContent = client.nickname ?? "";
  const url = new URL(location.href);
  url.searchParams.set("room", client.room);
  if (nickChosen && client.nickname) url.searchParams.set("nick", client.nickname);
  history.replaceState(null, "", url);
  showTitle();
}

client.on("state", (state) => {
  headline.render(state);
  document.body.dataset.status = state.status;
  if (state.status !== "connected") timeline.interrupted();
});

client.on("welcome", ({ message, reset, missed }) => {
  roomName.textContent = `#${message.room}`;
  input.placeholder = `Message #${message.room} · /help`;
  typing.clear();
  showMe();
  if (reset) {
    timeline.reset(message.history, message.lastSeq);
    timeline.line("info", `you are in #${message.room} as `, timeline.nick(message.nick));
    for (const problem of problems.splice(0)) timeline.line("error", problem);
  } else {
    const n = missed.length;
    timeline.line(
      "info",
      n === 0 ? "reconnected" : `reconnected · ${n} new message${n === 1 ? "" : "s"} while away`,
    );
    timeline.append(missed);
  }
});

client.on("chat", (message) => {
  typing.remove(message.nick);
  timeline.append([message]);
  if (document.hidden) {
    unread++;
    showTitle();
  }
});

client.on("presence", ({ events }) => {
  for (const event of events) {
    if (event.event === "join") timeline.line("join", "→ ", timeline.nick(event.nick), " joined");
    else if (event.event === "leave") {
      typing.remove(event.nick);
      timeline.line("leave", "← ", timeline.nick(event.nick), " left");
    } else {
      typing.remove(event.from);
      if (isMe(event.nick)) {
        nickChosen = true;
        showMe();
        timeline.line("rename", "you are now known as ", timeline.nick(event.nick));
      } else {
        timeline.line("rename", timeline.nick(event.from), " is now known as ", timeline.nick(event.nick));
      }
    }
  }
});

client.on("roster", (list) => users.render(list, client.nickname));
client.on("users", (reply) => {
  const names = reply.users.flatMap((name, i) =>
    i === 0 ? [timeline.nick(name)] : [", ", timeline.nick(name)],
  );
  timeline.line("info", `${reply.users.length} in #${reply.room}: `, ...names);
});
client.on("history", (page) => timeline.prepend(page.messages, page.hasMore));
client.on("typing", (t) => typing.add(t.nick));
client.on("error", (e) => {
  // Errors about one message (rate_limited, too_large) show on that message in #outbox.
  if (e.id === undefined) timeline.line("error", `${e.message} (${e.code})`);
});
client.on("invalid", (e) =>
  console.warn("ignored a frame that does not follow the protocol:", e.error, e.sample),
);
client.on("outbox", (entry) => {
  outbox.update(entry);
  if (entry.state === "sent" && entry.seq !== undefined) timeline.markOwn(entry.seq);
});

wireComposer(byId<HTMLFormElement>("composer"), input, {
  submit(line) {
    const command = client.input(line);
    if (command.kind === "invalid") {
      timeline.line("error", command.message);
      return false;
    }
    if (command.kind === "help") for (const help of HELP) timeline.line("info", help);
    if (command.kind === "chat") timeline.toBottom();
    return true;
  },
  typing: () => client.typing(),
  page: (direction) => scroller.scrollBy({ top: direction * scroller.clientHeight * 0.85 }),
});

byId<HTMLButtonElement>("reconnect").addEventListener("click", () => {
  if (client.state.status === "closed") client.connect();
  else client.reconnectNow();
});
window.addEventListener("online", () => client.reconnectNow());
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  unread = 0;
  showTitle();
});

showTitle();
client.connect();
input.focus();
