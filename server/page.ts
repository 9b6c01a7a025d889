/** Serves the browser page; until the client is bundled it explains how to connect. */
export function placeholderPage(): Response {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>chat</title></head>
<body><h1 id="headline">disconnected</h1><p>Connect a WebSocket client to <code>/ws?room=ROOM&amp;nick=NICK</code>.</p>
<ul id="chat"></ul><ul id="userlist"></ul><input id="inputline" disabled></body></html>`;
  return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
}
