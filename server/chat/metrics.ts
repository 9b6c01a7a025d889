/** Counters behind `/metrics`, rendered as Prometheus text. */

/**
 * Close codes counted by name: those this server sends (or Bun sends for it on a broken frame), and
 * the standard ones a client may end with. Anything else a client picks is "other", so a client
 * cannot grow the metric without bound.
 */
const COUNTED_CLOSES = new Set([1000, 1001, 1002, 1005, 1006, 1007, 1008, 1009, 1011, 4001, 4003]);

export class Metrics {
  messagesIn = 0;
  messagesOut = 0;
  acks = 0;
  storeCommits = 0;
  storeFailures = 0;
  storeCheckpoints = 0;
  readonly errors = new Map<string, number>();
  readonly closes = new Map<number | "other", number>();
  readonly refusals = new Map<string, number>();

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  close(code: number): void {
    const key = COUNTED_CLOSES.has(code) ? code : "other";
    this.closes.set(key, (this.closes.get(key) ?? 0) + 1);
  }

  refusal(code: string): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
  }

  render(gauges: { connections: number; rooms: number; uptimeSeconds: number }): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, rows: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of rows) lines.push(`${name}${labels} ${value}`);
    };
    const labelled = (label: string, map: Map<string | number, number>): Array<[string, number]> =>
      [...map].map(([k, v]) => [`{${label}="${k}"}`, v]);
    metric("chat_connections", "gauge", "Open WebSocket connections.", [["", gauges.connections]]);
    metric("chat_rooms", "gauge", "Rooms with at least one member.", [["", gauges.rooms]]);
    metric("chat_uptime_seconds", "gauge", "Seconds since the server started.", [["", gauges.uptimeSeconds]]);
    metric("chat_messages_in_total", "counter", "Frames received from clients.", [["", this.messagesIn]]);
    metric("chat_messages_out_total", "counter", "Messages delivered to clients.", [["", this.messagesOut]]);
    metric("chat_acks_total", "counter", "Chat messages acknowledged after a durable write.", [
      ["", this.acks],
    ]);
    metric("chat_store_commits_total", "counter", "Storage transactions committed.", [
      ["", this.storeCommits],
    ]);
    metric("chat_store_failures_total", "counter", "Storage transactions that failed.", [
      ["", this.storeFailures],
    ]);
    metric("chat_store_checkpoints_total", "counter", "WAL checkpoints run while the writer was idle.", [
      ["", this.storeCheckpoints],
    ]);
    metric("chat_errors_total", "counter", "Error replies sent, by code.", labelled("code", this.errors));
    metric(
      "chat_closes_total",
      "counter",
      "Connections closed, by close code.",
      labelled("code", this.closes),
    );
    metric(
      "chat_refusals_total",
      "counter",
      "Upgrades refused before the WebSocket opened, by code.",
      labelled("code", this.refusals),
    );
    return `${lines.join("\n")}\n`;
  }
}
