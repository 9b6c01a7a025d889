/**
 * Nick colours: a fixed palette of 12, each readable (WCAG 4.5:1 at least) on every background a nick
 * is drawn on in both themes. The colours themselves live in page.css (`--nick-0` … `--nick-11`, one
 * set per theme; test/page-palette.test.ts checks them); a name picks one by a hash of its nickKey, so
 * `Ann` and `ann` (one name to the server) look the same everywhere.
 */
import { nickKey } from "../../protocol/names";

export const PALETTE_SIZE = 12;

/** FNV-1a over the name's key, folded onto the palette. */
export function nickColourIndex(nick: string): number {
  const key = nickKey(nick);
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % PALETTE_SIZE;
}

/** The class that paints a nick (page.css: `.nc-0` … `.nc-11`). */
export function nickClass(nick: string): string {
  return `nc-${nickColourIndex(nick)}`;
}
