/** A stable colour per nickname: the same name gets the same hue on every screen and every visit. */
import { nickKey } from "../../protocol";

/** FNV-1a over the case-folded name, folded onto the colour wheel. */
export function nickHue(nick: string): number {
  let hash = 0x811c9dc5;
  const key = nickKey(nick);
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % 360;
}

/** Gives `el` the nickname's hue; page.css turns it into a colour readable in light and dark mode. */
export function paintNick(el: HTMLElement, nick: string): HTMLElement {
  el.style.setProperty("--hue", String(nickHue(nick)));
  return el;
}
