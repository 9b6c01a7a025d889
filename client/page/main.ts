/**
 * The browser page at `GET /`: protocol v2 with the identity kept in localStorage, so every tab (and
 * every visit) is the same user. A first visit asks for a name; `?nick=` and `?room=` still work.
 */
import { DEFAULT_ROOM } from "../../protocol/limits";
import type { IdentityStore } from "../v2/api";
import { ChatClientV2 } from "../v2/chat-client-v2";
import { App } from "./app";
import { checkNick, checkRoom } from "./commands";
import { store } from "./dom";
import { NamePrompt } from "./name-prompt";

const params = new URLSearchParams(location.search);
const asked = params.get("nick");
const nickChecked = asked === null ? undefined : checkNick(asked);
const urlNick = nickChecked && "nick" in nickChecked ? nickChecked.nick : undefined;
const roomAsked = params.get("room");
const roomChecked = roomAsked === null ? undefined : checkRoom(roomAsked);
const urlRoom = roomChecked && "room" in roomChecked ? roomChecked.room : undefined;

const identity: IdentityStore = {
  get: () => store.get("identity"),
  set: (token) => store.set("identity", token === "" ? undefined : token),
  clear: () => store.set("identity", undefined),
};

const prompt = new NamePrompt();
prompt.wire();

function start(nick: string | undefined): void {
  const known = identity.get() !== undefined;
  const client = new ChatClientV2({
    url: location.href,
    nick,
    room: urlRoom ?? (known ? undefined : DEFAULT_ROOM),
    identity,
  });
  const app = new App(client, { room: urlRoom, nick: known ? urlNick : undefined, prompt });
  app.start();
  const problems = [
    roomChecked && "problem" in roomChecked ? roomChecked.problem : undefined,
    nickChecked && "problem" in nickChecked ? nickChecked.problem : undefined,
  ].filter((p) => p !== undefined);
  if (problems.length > 0) app.tell(problems.join(" "));
}

if (identity.get() !== undefined || urlNick !== undefined) start(urlNick);
else prompt.ask(true, undefined, (nick) => start(nick));
