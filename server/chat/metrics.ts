/** Counters behind `/metrics`, rendered as Prometheus text. */
export class Metrics {
  messagesIn = 0;
  messagesOut = 0;
  acks = 0;
  storeCommits = 0;
  storeFailures = 0;
  readonly errors = new Map<string, number>();
  readonly closes = new Map<number, number>();
  readonly refusals = new Map<string, number>();

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  close(code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
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
