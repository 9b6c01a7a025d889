/** Raw WebSocket upgrade requests over TCP, to see refusals before the upgrade with any header set. */

export interface UpgradeAnswer {
  status: number;
  headers: Record<string, string>;
  /** The parsed JSON body of a refusal; undefined for a 101. */
  body: { error?: string; message?: string } | undefined;
}

/**
 * Sends `GET /ws?query` with the upgrade headers (plus `headers`, e.g. Origin) on a fresh TCP
 * connection and reads the answer's status line, headers and body, then hangs up.
 */
export async function upgradeRequest(
  base: URL,
  query: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<UpgradeAnswer> {
  const path = `/ws?${new URLSearchParams(query)}`;
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${base.host}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${btoa("0123456789abcdef")}`,
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  const request = `${lines.join("\r\n")}\r\n\r\n`;
  let raw = "";
  const decoder = new TextDecoder();
  return new Promise<UpgradeAnswer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${path}: ${JSON.stringify(raw)}`)), 5000);
    const finish = (answer: UpgradeAnswer, socket: { end(): void }) => {
      clearTimeout(timer);
      socket.end();
      resolve(answer);
    };
    Bun.connect({
      hostname: base.hostname,
      port: Number(base.port),
      socket: {
        open(socket) {
          socket.write(request);
        },
        data(socket, chunk) {
          raw += decoder.decode(chunk, { stream: true });
          const parsed = parseAnswer(raw);
          if (parsed) finish(parsed, socket);
        },
        close() {
          const parsed = parseAnswer(raw);
          clearTimeout(timer);
          if (parsed) resolve(parsed);
          else reject(new Error(`connection closed mid-answer: ${JSON.stringify(raw)}`));
        },
        error(_socket, err) {
          clearTimeout(timer);
          reject(err);
        },
      },
    }).catch(reject);
  });
}

/** A complete answer from what arrived so far, or undefined while more is due. */
function parseAnswer(raw: string): UpgradeAnswer | undefined {
  const end = raw.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const [statusLine = "", ...headerLines] = raw.slice(0, end).split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (status === 101) return { status, headers, body: undefined };
  const length = Number(headers["content-length"] ?? "NaN");
  const rest = raw.slice(end + 4);
  if (!Number.isFinite(length) || new TextEncoder().encode(rest).length < length) return undefined;
  return { status, headers, body: JSON.parse(rest) };
}
