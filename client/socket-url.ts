/** The `GET /ws` address for a server address and the connect parameters of shared/PROTOCOL.md. */
export interface SocketParams {
  room: string;
  nick?: string | undefined;
  since?: number | undefined;
  resume?: string | undefined;
  token?: string | undefined;
}

/**
 * Resolves `ws` against `base` (an http(s) or ws(s) address, such as the page's own location),
 * so a server mounted under a path prefix works too.
 */
export function socketUrl(base: string | URL, params: SocketParams): string {
  const url = new URL("ws", base);
  url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
  url.hash = "";
  const query = new URLSearchParams({ room: params.room });
  if (params.nick !== undefined) query.set("nick", params.nick);
  if (params.since !== undefined) query.set("since", String(params.since));
  if (params.resume !== undefined) query.set("resume", params.resume);
  if (params.token !== undefined) query.set("token", params.token);
  url.search = query.toString();
  return url.toString();
}
