/**
 * One row of the timeline as DOM: a post (nick, time, text, reply quote, "(edited)", reactions), a
 * pending post of this page, a day separator, the unread line, folded presence or a note. Buttons
 * carry `data-act`; timeline-view.ts handles their clicks for all rows at once.
 */
import type { ClientPost, PendingPost } from "../v2/api";
import { h, icon } from "./dom";
import { fullDate, timeElement } from "./format-time";
import { plainExcerpt } from "./markdown";
import { nickClass } from "./palette";
import { type IsMe, renderText } from "./render-text";
import { dayLabel, type Row, summarizePresence } from "./timeline-model";

export interface RowContext {
  isMe: IsMe;
  /** A post of this room by seq, if held (for reply quotes). */
  find(seq: number): ClientPost | undefined;
  /** The seq whose text is being edited in place. */
  editing?: number;
  /** The seq waiting for "Delete this message?". */
  confirming?: number;
}

/** Everything a post row shows, as a string: a row is rebuilt only when this changes. */
export function rowSignature(row: Row, ctx: RowContext): string {
  if (row.kind !== "post") return row.kind === "presence" ? `${row.notes.length}` : "";
  const p = row.post;
  const quoted = p.replyTo !== undefined ? ctx.find(p.replyTo) : undefined;
  return [
    p.text,
    p.nick,
    p.editedAt,
    p.deleted,
    JSON.stringify(p.reactions ?? []),
    row.head,
    quoted ? `${quoted.nick}\u0001${quoted.text}` : "",
    ctx.editing === p.seq ? "e" : "",
    ctx.confirming === p.seq ? "c" : "",
    ctx.isMe(p.nick),
    p.mentions?.some(ctx.isMe),
  ].join("\u0002");
}

export function rowElement(row: Row, ctx: RowContext): HTMLLIElement {
  switch (row.kind) {
    case "day":
      return h("li", { class: "sep day" }, h("span", {}, dayLabel(row.at)));
    case "unread":
      return h("li", { class: "sep unread", attrs: { id: "unread-line" } }, h("span", {}, "New messages"));
    case "presence": {
      const { text, detail } = summarizePresence(row.notes);
      const what = detail
        ? h("details", {}, h("summary", {}, text), h("p", {}, detail))
        : document.createTextNode(text);
      return h(
        "li",
        { class: "event presence" },
        timeElement(row.at),
        h("span", { class: "mark", attrs: { "aria-hidden": "true" } }, "↔"),
        h("div", { class: "what" }, what),
      );
    }
    case "note":
      return h(
        "li",
        { class: `event ${row.note.kind}`, attrs: { role: row.note.kind === "error" ? "alert" : undefined } },
        timeElement(row.note.at),
        h("span", { class: "mark", attrs: { "aria-hidden": "true" } }, row.note.kind === "error" ? "!" : "·"),
        h("div", { class: "what" }, row.note.text),
      );
    default:
      return postElement(row.post, row.head, ctx);
  }
}

function nickEl(nick: string): HTMLElement {
  return h("span", { class: `nick ${nickClass(nick)}`, attrs: { title: nick } }, nick);
}

function quoteOf(post: ClientPost, ctx: RowContext): HTMLElement | undefined {
  if (post.replyTo === undefined) return undefined;
  const original = ctx.find(post.replyTo);
  const excerpt = original
    ? original.deleted
      ? "message deleted"
      : plainExcerpt(original.text, 90)
    : "an earlier message";
  return h(
    "button",
    {
      class: "quote",
      attrs: {
        type: "button",
        "data-act": "quote",
        "data-to": String(post.replyTo),
        "aria-label": `In reply to ${original ? `${original.nick}: ` : ""}${excerpt}. Show it`,
      },
    },
    icon("reply"),
    original ? h("b", { class: nickClass(original.nick) }, original.nick) : null,
    h("span", {}, excerpt),
  );
}

function reactionsOf(post: ClientPost, ctx: RowContext): HTMLElement | undefined {
  if (!post.reactions || post.reactions.length === 0 || post.deleted) return undefined;
  const chips = post.reactions.map(({ emoji, nicks }) => {
    const mine = nicks.some(ctx.isMe);
    const who = nicks.length <= 1 ? nicks.join("") : `${nicks.slice(0, -1).join(", ")} and ${nicks.at(-1)}`;
    return h(
      "button",
      {
        class: "reaction",
        attrs: {
          type: "button",
          "data-act": "reaction",
          "data-emoji": emoji,
          "aria-pressed": String(mine),
          title: `${who} reacted with ${emoji}`,
          "aria-label": `${emoji} ${nicks.length}: ${who}. ${mine ? "Take yours back" : "Add yours"}`,
        },
      },
      h("span", { class: "e" }, emoji),
      String(nicks.length),
    );
  });
  return h("div", { class: "reactions" }, ...chips);
}

function editorOf(post: ClientPost): HTMLElement {
  // field-sizing in page.css grows it where supported; elsewhere it starts as tall as the text.
  const rows = String(Math.min(8, post.text.split("\n").length + 1));
  const area = h("textarea", {
    attrs: { "aria-label": "Edit your message", rows, "data-editor": String(post.seq) },
  });
  area.value = post.text;
  return h(
    "div",
    { class: "editor" },
    area,
    h("p", {}, "Enter to save · Shift+Enter for a new line · Esc to cancel"),
  );
}

function confirmOf(): HTMLElement {
  return h(
    "div",
    { class: "confirm", attrs: { role: "group", "aria-label": "Delete this message?" } },
    h("span", {}, "Delete this message for everyone?"),
    h("button", { class: "btn danger", attrs: { type: "button", "data-act": "delete-yes" } }, "Delete"),
    h("button", { class: "btn", attrs: { type: "button", "data-act": "delete-no" } }, "Cancel"),
  );
}

export function postElement(post: ClientPost, head: boolean, ctx: RowContext): HTMLLIElement {
  const own = ctx.isMe(post.nick);
  const classes = ["msg"];
  if (head) classes.push("first");
  if (own) classes.push("own");
  if (!own && post.mentions?.some(ctx.isMe)) classes.push("mentioned");
  if (post.kind === "action") classes.push("action");
  if (post.deleted) classes.push("deleted");
  const at = Date.parse(post.sentAt);
  const body = h("div", { class: "body" }, quoteOf(post, ctx));
  if (ctx.editing === post.seq && !post.deleted) body.append(editorOf(post));
  else {
    const text = h("div", { class: "text" });
    if (post.deleted) text.append("message deleted");
    else if (post.kind === "action") {
      text.append(
        h("span", { class: `actor ${nickClass(post.nick)}` }, post.nick),
        " ",
        ...renderText(post.text, ctx.isMe),
      );
    } else text.append(...renderText(post.text, ctx.isMe));
    body.append(text);
    if (post.editedAt && !post.deleted) {
      body.append(
        h(
          "span",
          { class: "edited", attrs: { title: `edited ${fullDate(Date.parse(post.editedAt))}` } },
          "(edited)",
        ),
      );
    }
  }
  if (ctx.confirming === post.seq) body.append(confirmOf());
  body.append(reactionsOf(post, ctx) ?? "");
  return h(
    "li",
    {
      class: classes.join(" "),
      attrs: { "data-seq": String(post.seq), "data-nick": post.nick, tabindex: "-1" },
    },
    // The spaces keep textContent readable ("12:01 ann hello"); the grid ignores them.
    timeElement(at),
    " ",
    nickEl(post.nick),
    " ",
    body,
  );
}

/** A post of this page that the server has not confirmed: dimmed while sending, with Retry and Discard when it failed. */
export function pendingElement(p: PendingPost, me: string, head: boolean): HTMLLIElement {
  const text = h("div", { class: "text" });
  if (p.kind === "action") text.append(h("span", { class: "actor" }, me), " ");
  text.append(p.text);
  const body = h("div", { class: "body" }, text);
  if (p.state === "failed") {
    body.append(
      h(
        "div",
        { class: "failure", attrs: { role: "alert" } },
        h("span", {}, `Not sent: ${p.reason ?? "the connection dropped"}`),
        h(
          "button",
          { class: "btn", attrs: { type: "button", "data-act": "retry", "data-id": p.id } },
          "Retry",
        ),
        h(
          "button",
          { class: "btn", attrs: { type: "button", "data-act": "discard", "data-id": p.id } },
          "Discard",
        ),
      ),
    );
  }
  const classes = `msg pending own ${p.state}${head ? " first" : ""}${p.kind === "action" ? " action" : ""}`;
  return h(
    "li",
    {
      class: classes,
      attrs: { "data-pending": p.id, "aria-label": p.state === "sending" ? "Sending" : undefined },
    },
    h("time", {}, p.state === "sending" ? "…" : ""),
    " ",
    nickEl(me),
    " ",
    body,
  );
}
