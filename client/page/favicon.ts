/** The tab's icon, drawn on a canvas: a speech bubble, with an amber dot for unread posts and a red one for mentions. */
type Badge = "none" | "unread" | "mention";

let drawn: Badge | undefined;
let wanted: Badge = "none";
let queued = false;

/** Draws the icon soon (encoding a PNG is work the first paint need not wait for); the last call wins. */
export function drawFavicon(badge: Badge): void {
  wanted = badge;
  if (queued || badge === drawn) return;
  queued = true;
  setTimeout(() => {
    queued = false;
    draw(wanted);
  }, 50);
}

function draw(badge: Badge): void {
  if (badge === drawn) return;
  drawn = badge;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 64;
  const g = canvas.getContext("2d");
  if (!g) return;
  // roundRect is recent (2023 in every engine): older ones get square corners.
  const box = (x: number, y: number, w: number, h: number, r: number) =>
    g.roundRect ? g.roundRect(x, y, w, h, r) : g.rect(x, y, w, h);
  g.fillStyle = "#2d5bd3";
  g.beginPath();
  box(4, 4, 56, 56, 14);
  g.fill();
  // The bubble: a rounded rectangle with a tail.
  g.fillStyle = "#ffffff";
  g.beginPath();
  box(15, 17, 34, 24, 8);
  g.moveTo(22, 40);
  g.lineTo(20, 49);
  g.lineTo(31, 40);
  g.fill();
  if (badge !== "none") {
    g.fillStyle = "#ffffff";
    g.beginPath();
    g.arc(50, 14, 14, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = badge === "mention" ? "#d92d20" : "#f0a020";
    g.beginPath();
    g.arc(50, 14, 10.5, 0, Math.PI * 2);
    g.fill();
  }
  let link = document.querySelector<HTMLLinkElement>("link[rel=icon]");
  if (!link) {
    link = document.createElement("link");
    link.rel = "icon";
    document.head.append(link);
  }
  link.href = canvas.toDataURL("image/png");
}
