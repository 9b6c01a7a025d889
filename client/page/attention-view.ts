/** The title, the favicon badge and, on phones, the dot on the rooms button: what wants attention. */
import type { RoomView } from "../v2/api";
import { attentionOf, titleText } from "./attention";
import { byId } from "./dom";
import { drawFavicon } from "./favicon";

export function showAttention(
  views: RoomView[],
  active: string | undefined,
  place: string | undefined,
): void {
  const all = attentionOf(views);
  document.title = titleText(all, place);
  drawFavicon(all.mentions > 0 ? "mention" : all.unread > 0 ? "unread" : "none");
  // On a phone the room list is hidden: its button shows a dot when another room wants attention.
  const others = attentionOf(views.filter((v) => v.room !== active));
  const menu = byId("menu");
  menu.dataset.badge = others.mentions > 0 ? "mention" : others.unread > 0 ? "unread" : "";
  menu.setAttribute(
    "aria-label",
    others.unread > 0 ? `Show rooms (${others.unread} unread elsewhere)` : "Show rooms",
  );
}
