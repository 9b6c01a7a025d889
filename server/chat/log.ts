/** Structured logs: one JSON line per event; callers never pass message bodies or tokens. */
export type Level = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: Level, event: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(min: Level, write: (line: string) => void): Logger {
  return {
    log(level, event, fields) {
      if (ORDER[level] < ORDER[min]) return;
      write(JSON.stringify({ t: new Date().toISOString(), level, event, ...fields }));
    },
  };
}

export const silentLogger: Logger = { log() {} };

/** Name and message of anything thrown, safe to log. */
export function describeError(err: unknown): { error: string } {
  return { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
}
