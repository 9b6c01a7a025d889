/** Building DOM nodes from text only: user text becomes text nodes, never parsed HTML. */
type Child = Node | string | null | undefined | false;

export interface Props {
  class?: string;
  /** Attributes set with setAttribute: values are never parsed as markup. */
  attrs?: Record<string, string | undefined>;
  /** A click handler. */
  onclick?: (event: MouseEvent) => void;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (value !== undefined) el.setAttribute(name, value);
  }
  if (props.onclick) el.addEventListener("click", props.onclick as EventListener);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

/** The element with this id; a missing one is a bug in page.html, so it throws. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page.html has no #${id}`);
  return el as T;
}

/** Stroke icons on a 24×24 grid, drawn for this page. */
const ICONS = {
  x: "M6 6l12 12M18 6 6 18",
  plus: "M12 5v14M5 12h14",
  reply: "M9 14 4 9l5-5M4 9h10.5a5.5 5.5 0 0 1 0 11H11",
  smile: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8 14s1.5 2 4 2 4-2 4-2M9 9h.01M15 9h.01",
  edit: "M12 20h9M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z",
  trash: "M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6M10 11v6M14 11v6",
  chat: "M21 12a8 8 0 0 1-11.6 7.1L4 20l1.2-4.4A8 8 0 1 1 21 12z",
  down: "M12 5v14M6 13l6 6 6-6",
  bell: "M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a2 2 0 0 0 3.4 0",
  bellOff: "M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a2 2 0 0 0 3.4 0M3 3l18 18",
} as const;

export type IconName = keyof typeof ICONS;

const SVG = "http://www.w3.org/2000/svg";

export function icon(name: IconName): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

/** A small icon button with its label for assistive technology and as a tooltip. */
export function iconButton(
  name: IconName,
  label: string,
  onclick: (event: MouseEvent) => void,
  cls = "icon",
) {
  return h(
    "button",
    { class: cls, attrs: { type: "button", "aria-label": label, title: label }, onclick },
    icon(name),
  );
}

/** Swaps an icon button's picture. */
export function setIcon(button: HTMLElement, name: IconName): void {
  button.querySelector("svg")?.replaceWith(icon(name));
}

/** localStorage that never throws (private modes, disabled storage): values simply do not persist. */
export const store = {
  get(key: string): string | undefined {
    try {
      return localStorage.getItem(`bun-chat.${key}`) ?? undefined;
    } catch {
      return undefined;
    }
  },
  set(key: string, value: string | undefined): void {
    try {
      if (value === undefined) localStorage.removeItem(`bun-chat.${key}`);
      else localStorage.setItem(`bun-chat.${key}`, value);
    } catch {
      // Nothing to do: the setting lasts for this page only.
    }
  },
};
