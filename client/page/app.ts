/**
 * The page's controller: takes what the v2 client reports and draws it through the views; turns
 * what the reader does (typing, clicking, keys) into client calls. It keeps what only the page
 * knows: which room is shown, where its "New messages" line goes, and its presence notes.
 */
import { nickKey } from "../../protocol/names";
import type { ChatClientV2Api, ClientV2Events, RoomView } from "../v2/api";
import { Announcer } from "./announcer";
import { showAttention } from "./attention-view";
import { HELP, parseCommand } from "./commands";
import { rankNicks } from "./completion";
import { ComposerView } from "./composer-view";
import { byId, store } from "./dom";
import { HeaderView } from "./header-view";
import { HeadlineView } from "./headline-view";
import { Layout } from "./layout";
import { plainExcerpt } from "./markdown";
import { MembersView } from "./members-view";
import type { NamePrompt } from "./name-prompt";
import { Notifier } from "./notifier";
import { checkOrigin, showBanner } from "./origin-check";
import { nickClass } from "./palette";
import { RoomNotes } from "./room-notes";
import { roomLabel, SidebarView } from "./sidebar-view";
import { SwitcherView } from "./switcher-view";
import { findPost, TimelineView } from "./timeline-view";

export interface AppOptions {
  /** The room named in the address: shown once it is one of the user's rooms. */
  room?: string;
  /** The name asked for in the address (`?nick=`), applied once connected if it differs. */
  nick?: string;
  prompt: NamePrompt;
}

export class App {
  #active: string | undefined;
  readonly #notes = new RoomNotes();
  readonly #unreadAfter = new Map<string, number | undefined>();
  /** A room to show as soon as it is added (after /join, /msg or ?room=), with a text to send there. */
  #want: { room?: string; dm?: string; text?: string } | undefined;
  #wantNick: string | undefined;
  #readyOnce = false;
  #failures = 0;
  #originChecked = false;
  #wasConnected = false;

  readonly #announcer = new Announcer(byId("announcer"));
  readonly #layout = new Layout();
  readonly #headline = new HeadlineView(byId("headline"), byId<HTMLButtonElement>("reconnect"));
  readonly #header: HeaderView;
  readonly #sidebar: SidebarView;
  readonly #members: MembersView;
  readonly #timeline: TimelineView;
  readonly #composer: ComposerView;
  readonly #switcher: SwitcherView;
  readonly #notifier: Notifier;

  readonly #client: ChatClientV2Api;
  readonly #opts: AppOptions;

  constructor(client: ChatClientV2Api, opts: AppOptions) {
    this.#client = client;
    this.#opts = opts;
    this.#wantNick = opts.nick;
    if (opts.room !== undefined) this.#want = { room: opts.room };
    const c = client;
    this.#header = new HeaderView((room, topic) => c.setTopic(room, topic));
    this.#sidebar = new SidebarView(byId<HTMLUListElement>("room-list"), byId<HTMLUListElement>("dm-list"), {
      open: (room) => this.#open(room, true),
      part: (room) => c.part(room),
      join: (room) => this.#join(room),
      dm: (nick) => this.#dm(nick),
    });
    this.#members = new MembersView(byId<HTMLUListElement>("userlist"), byId("members-heading"), (nick) =>
      this.#dm(nick),
    );
    this.#timeline = new TimelineView(
      {
        scroller: byId("scroller"),
        list: byId<HTMLOListElement>("chat"),
        outbox: byId<HTMLOListElement>("outbox"),
        older: byId<HTMLButtonElement>("older"),
        start: byId("start"),
        jump: byId<HTMLButtonElement>("jump"),
      },
      (nick) => this.#isMe(nick),
      () => c.nick ?? "",
      {
        loadOlder: (room) => c.loadOlder(room),
        readable: () => this.#markRead(),
        reply: (seq) => this.#reply(seq),
        react: (seq, emoji, on) => this.#inActive((room) => c.react(room, seq, emoji, on)),
        edit: (seq, text) => this.#inActive((room) => c.edit(room, seq, text)),
        remove: (seq) => this.#inActive((room) => c.remove(room, seq)),
        retry: (id) => this.#inActive((room) => c.retry(room, id)),
        discard: (id) => this.#inActive((room) => c.discard(room, id)),
        editorClosed: () => this.#composer.focus(),
      },
    );
    this.#composer = new ComposerView({
      submit: (text, replyTo) => this.#submit(text, replyTo),
      typing: () => this.#inActive((room) => c.typing(room)),
      editLast: () => {
        const post = this.#timeline.lastOwnPost();
        if (post) this.#timeline.startEdit(post.seq);
        return post !== undefined;
      },
      nicks: () => {
        const view = this.#view();
        return view ? rankNicks(view.users, view.posts, c.nick) : [];
      },
    });
    this.#switcher = new SwitcherView(
      () =>
        this.#sidebar.shown().map((room) => {
          const view = c.view(room);
          return {
            room,
            label: roomLabel(room, view),
            hint: view?.dm !== undefined ? "direct" : view?.unread ? `${view.unread} unread` : "",
            unread: view?.unread ?? 0,
          };
        }),
      (room) => this.#open(room, true),
      (room) => this.#join(room),
    );
    this.#notifier = new Notifier(
      (message) => {
        this.#composer.showProblem(message);
        this.#announcer.say(message);
      },
      (room) => this.#open(room, true),
    );
    this.#wire();
  }

  /** Says something to the reader above the composer (and to screen readers). */
  tell(message: string): void {
    this.#composer.showProblem(message);
    this.#announcer.say(message);
  }

  start(): void {
    this.#render();
    this.#client.connect();
    this.#composer.focus();
  }

  // ---- the client's reports ----

  #wire(): void {
    const c = this.#client;
    c.on("state", (s) => this.#onState(s));
    c.on("ready", (r) => this.#onReady(r));
    c.on("rooms", (r) => this.#onRooms(r));
    c.on("room", ({ room, view }) => this.#onRoom(room, view));
    c.on("post", (p) => this.#onPost(p));
    c.on("nick", ({ nick }) => {
      this.#showMe();
      this.#timeline.redraw();
      this.#announcer.say(`You are now ${nick}.`);
    });
    c.on("error", (p) => this.#onProblem(p));
    byId("reconnect").addEventListener("click", () => c.reconnectNow?.() ?? c.connect());
    byId("rename").addEventListener("click", () =>
      this.#opts.prompt.ask(false, c.nick, (nick) => c.rename(nick)),
    );
    byId("switcher-open").addEventListener("click", () => this.#switcher.open());
    document.addEventListener("keydown", (e) => this.#keys(e));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "visible") return;
      const view = this.#view();
      if (this.#active !== undefined && view && view.unread > 0)
        this.#unreadAfter.set(this.#active, view.readSeq);
      this.#renderActive();
      this.#markRead();
    });
    window.addEventListener("focus", () => this.#markRead());
  }

  #onState({ state, retryInMs, reason }: ClientV2Events["state"]): void {
    const c = this.#client;
    const id = c.connectionId ?? c.userId;
    this.#headline.render(state, id, retryInMs, reason);
    document.body.dataset.state = state;
    this.#renderSidebar();
    if (state === "connected") {
      if (this.#failures > 0 || this.#wasConnected) this.#announcer.say("Connected again.");
      this.#failures = 0;
      this.#wasConnected = true;
      showBanner(undefined);
    } else if (state === "reconnecting" && retryInMs !== undefined) {
      if (this.#failures === 0 && this.#wasConnected) this.#announcer.say("Disconnected. Reconnecting…");
      this.#failures++;
      if (this.#failures >= 2 && !this.#originChecked && !this.#wasConnected) {
        this.#originChecked = true;
        void checkOrigin(() => this.#client.state !== "connected");
      }
    }
  }

  #onReady({ nick }: ClientV2Events["ready"]): void {
    this.#showMe();
    if (this.#wantNick !== undefined) {
      if (nickKey(this.#wantNick) !== nickKey(nick) || this.#wantNick !== nick)
        this.#client.rename(this.#wantNick);
      this.#wantNick = undefined;
    }
    if (!this.#readyOnce) {
      this.#readyOnce = true;
      const rooms = this.#client.rooms();
      const stored = store.get("room");
      const first =
        this.#want?.room !== undefined && rooms.includes(this.#want.room)
          ? this.#want.room
          : stored !== undefined && rooms.includes(stored) && this.#want?.room === undefined
            ? stored
            : undefined;
      if (first !== undefined) this.#want = undefined;
      this.#renderSidebar();
      this.#open(first ?? (this.#want?.room === undefined ? this.#sidebar.shown()[0] : undefined), false);
    } else if (this.#active !== undefined && !this.#client.rooms().includes(this.#active)) {
      this.#open(this.#sidebar.shown()[0], false);
    }
    this.#render();
  }

  #onRooms({ added, removed, kicked }: ClientV2Events["rooms"]): void {
    if (removed !== undefined) {
      this.#notes.forget(removed);
      this.#unreadAfter.delete(removed);
      if (kicked) {
        const why = kicked.reason ? ` (${kicked.reason})` : "";
        const message = `You were removed from #${removed} by ${kicked.by}${why}.`;
        this.#composer.showProblem(message);
        this.#announcer.say(message);
      }
    }
    this.#renderSidebar();
    if (added !== undefined && this.#wanted(added)) {
      const text = this.#want?.text;
      this.#want = undefined;
      this.#open(added, true);
      if (text) this.#client.send(added, text);
    } else if (removed !== undefined && removed === this.#active) {
      this.#open(this.#sidebar.shown()[0], false);
    } else if (this.#active === undefined && this.#client.rooms().length > 0 && this.#want === undefined) {
      this.#open(this.#sidebar.shown()[0], false);
    }
    this.#render();
  }

  #wanted(room: string): boolean {
    const want = this.#want;
    if (!want) return false;
    if (want.room !== undefined) return want.room === room;
    const dm = this.#client.view(room)?.dm;
    return want.dm !== undefined && dm !== undefined && nickKey(dm) === nickKey(want.dm);
  }

  #onRoom(room: string, view: RoomView): void {
    this.#notes.track(view);
    if (room === this.#active) {
      this.#renderActive();
      this.#markRead();
    }
    this.#renderSidebar();
    this.#showAttention();
  }

  #onPost({ post, mentionsMe, own }: ClientV2Events["post"]): void {
    if (own) return;
    const view = this.#client.view(post.room);
    const dm = view?.dm !== undefined;
    const text = post.deleted ? "" : plainExcerpt(post.text, 140);
    const said = post.kind === "action" ? `${post.nick} ${text}` : `${post.nick}: ${text}`;
    const key = `${post.room}\u0001${post.seq}`;
    if (post.room === this.#active && document.visibilityState === "visible") this.#announcer.say(said, key);
    else if (mentionsMe || dm) {
      this.#announcer.say(
        dm ? `Direct message from ${said}` : `${post.nick} mentioned you in #${post.room}: ${text}`,
        key,
      );
    }
    if (mentionsMe || dm) {
      this.#notifier.notify(post.room, dm ? post.nick : `${post.nick} in #${post.room}`, text);
    }
  }

  #onProblem({ code, message, id, room, cause }: ClientV2Events["error"]): void {
    // A frame the client dropped is for developers, not for the reader.
    if (code === "invalid_frame") {
      console.warn("chat: dropped a frame", cause);
      return;
    }
    // A refused post shows on the post itself.
    if (id !== undefined && room !== undefined && this.#client.view(room)?.pending.some((p) => p.id === id))
      return;
    this.#composer.showProblem(message);
  }

  // ---- what the reader does ----

  #submit(text: string, replyTo: number | undefined): boolean {
    const c = this.#client;
    const cmd = parseCommand(text);
    const room = this.#active;
    const needsRoom =
      cmd.kind === "post" ||
      cmd.kind === "action" ||
      cmd.kind === "topic" ||
      cmd.kind === "who" ||
      cmd.kind === "help";
    if (needsRoom && room === undefined) {
      this.#composer.showProblem("Join a room first: /join ROOM, or + beside Rooms.");
      return false;
    }
    const here = room as string;
    switch (cmd.kind) {
      case "none":
        return false;
      case "invalid":
        this.#composer.showProblem(cmd.message);
        return false;
      case "post":
      case "action":
        c.send(here, cmd.text, {
          ...(cmd.kind === "action" ? { kind: "action" as const } : {}),
          ...(replyTo !== undefined ? { replyTo } : {}),
        });
        this.#timeline.toBottom();
        return true;
      case "nick":
        c.rename(cmd.nick);
        return true;
      case "join":
        this.#join(cmd.room);
        return true;
      case "part": {
        const target = cmd.room ?? room;
        if (target === undefined || !c.rooms().includes(target)) {
          this.#composer.showProblem(
            target === undefined ? "You are in no room." : `You are not in #${target}.`,
          );
          return false;
        }
        c.part(target);
        return true;
      }
      case "msg":
        this.#dm(cmd.nick, cmd.text);
        return true;
      case "topic":
        c.setTopic(here, cmd.topic);
        return true;
      case "who": {
        const users = this.#view()?.users ?? [];
        this.#note(here, { kind: "info", text: `${users.length} here: ${users.join(", ")}` });
        return true;
      }
      case "help":
        this.#note(here, { kind: "info", text: HELP.map(([form, what]) => `${form} — ${what}`).join("\n") });
        return true;
    }
  }

  #join(room: string): void {
    if (this.#client.rooms().includes(room)) {
      this.#open(room, true);
      return;
    }
    this.#want = { room };
    this.#client.join(room);
  }

  #dm(nick: string, text?: string): void {
    const c = this.#client;
    if (c.nick !== undefined && nickKey(nick) === nickKey(c.nick)) {
      this.#composer.showProblem("That is you: pick someone else to write to.");
      return;
    }
    const existing = c.rooms().find((room) => {
      const dm = c.view(room)?.dm;
      return dm !== undefined && nickKey(dm) === nickKey(nick);
    });
    if (existing !== undefined) {
      this.#open(existing, true);
      if (text) c.send(existing, text);
      return;
    }
    this.#want = text ? { dm: nick, text } : { dm: nick };
    c.dm(nick);
  }

  #reply(seq: number): void {
    const view = this.#view();
    const post = view ? findPost(view.posts, seq) : undefined;
    if (!post) return;
    this.#composer.setReply({ seq, nick: post.nick, text: post.text });
    this.#composer.focus();
  }

  /** Shows a room (undefined: none); `focus` moves the keyboard to the composer. */
  #open(room: string | undefined, focus: boolean): void {
    const c = this.#client;
    if (room !== this.#active) {
      if (this.#active !== undefined) this.#unreadAfter.delete(this.#active);
      this.#active = room;
      const view = room === undefined ? undefined : c.view(room);
      if (room !== undefined) {
        this.#unreadAfter.set(room, view && view.unread > 0 ? view.readSeq : undefined);
        store.set("room", room);
      }
      const url = new URL(location.href);
      url.searchParams.delete("nick");
      if (room !== undefined && view?.dm === undefined) url.searchParams.set("room", room);
      else url.searchParams.delete("room");
      history.replaceState(null, "", url);
      this.#composer.switchRoom(
        room,
        room === undefined ? "Join a room to start" : `Message ${roomLabel(room, view)}`,
      );
    }
    this.#layout.closeOverlays();
    this.#render();
    this.#markRead();
    if (focus) this.#composer.focus();
  }

  #keys(e: KeyboardEvent): void {
    const mod = e.ctrlKey || e.metaKey;
    if (mod && !e.altKey && !e.shiftKey && e.key.toLowerCase() === "k") {
      e.preventDefault();
      this.#switcher.open();
    } else if (e.altKey && !mod && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      e.preventDefault();
      const order = this.#sidebar.shown();
      if (order.length === 0) return;
      const at = this.#active === undefined ? -1 : order.indexOf(this.#active);
      const step = e.key === "ArrowUp" ? -1 : 1;
      this.#open(order[(at + step + order.length) % order.length], false);
    } else if (e.key === "Escape" && this.#layout.closeOverlays()) {
      e.preventDefault();
      byId("menu").focus();
    } else if (
      e.key.length === 1 &&
      !mod &&
      !e.altKey &&
      (document.activeElement === document.body || document.activeElement?.id === "scroller")
    ) {
      // Typing anywhere else goes to the composer.
      this.#composer.focus();
    }
  }

  // ---- drawing ----

  #render(): void {
    this.#renderSidebar();
    this.#renderActive();
    this.#showAttention();
  }

  #renderSidebar(): void {
    const c = this.#client;
    this.#sidebar.render(
      c.rooms().map((room) => ({ room, view: c.view(room) })),
      this.#active,
      c.state === "connected",
    );
  }

  #renderActive(): void {
    const room = this.#active;
    const view = this.#view();
    this.#header.render(room, view);
    this.#members.render(view?.users ?? [], (nick) => this.#isMe(nick));
    this.#composer.setTyping(view?.typing ?? []);
    if (room !== undefined && view) {
      this.#timeline.show(room, view, this.#notes.of(room), this.#unreadAfter.get(room));
    } else {
      this.#timeline.clear(
        this.#client.state === "connected" && this.#want === undefined
          ? "You are in no room yet. Join one with + beside Rooms, or type /join NAME below."
          : "",
      );
    }
  }

  #showMe(): void {
    const nick = this.#client.nick ?? "";
    byId("me-name").textContent = nick;
    byId("me-initial").textContent = [...nick][0] ?? "";
    byId("me-avatar").className = `avatar ${nick ? nickClass(nick) : ""}`;
  }

  #showAttention(): void {
    const c = this.#client;
    const views = c.rooms().flatMap((room) => c.view(room) ?? []);
    const place = this.#active === undefined ? undefined : roomLabel(this.#active, this.#view());
    showAttention(views, this.#active, place);
  }

  // ---- helpers ----

  #view(): RoomView | undefined {
    return this.#active === undefined ? undefined : this.#client.view(this.#active);
  }

  #inActive(fn: (room: string) => void): void {
    if (this.#active !== undefined) fn(this.#active);
  }

  #isMe(nick: string): boolean {
    const me = this.#client.nick;
    return me !== undefined && (nick === me || nickKey(nick) === nickKey(me));
  }

  #markRead(): void {
    const room = this.#active;
    const view = this.#view();
    if (room === undefined || !view || document.visibilityState !== "visible") return;
    const last = view.posts.at(-1)?.seq;
    if (last !== undefined && last > view.readSeq && this.#timeline.atBottom())
      this.#client.markRead(room, last);
  }

  #note(room: string, note: { kind: "info" | "error"; text: string }): void {
    const view = this.#client.view(room);
    if (!view) return;
    this.#notes.add(view, note);
    if (room === this.#active) {
      this.#renderActive();
      this.#timeline.toBottom();
    }
  }
}
