/**
 * The few calls the SQLite stores make of a driver, in bun:sqlite's shape, so their SQL exists once:
 * bun:sqlite (sqlite-bun.ts, the Bun server's fast path) and node:sqlite (sqlite-node.ts: Deno, and
 * Bun too) sit behind it. `runtimeSqlite()` is bun:sqlite where the runtime has it, else node:sqlite.
 */
import { bunSqlite } from "./sqlite-bun";
import { nodeSqlite } from "./sqlite-node";

/** What a statement binds: no booleans and no undefined (node:sqlite refuses both). */
export type SqlValue = string | number | bigint | null | Uint8Array;

export interface SqlStatement<Row = unknown, Params extends SqlValue[] = SqlValue[]> {
  /** The first row; null (bun:sqlite) or undefined (node:sqlite) when there is none. */
  get(...params: Params): Row | null | undefined;
  all(...params: Params): Row[];
  run(...params: Params): { changes: number };
}

export interface SqlDatabase {
  /** A prepared statement, cached by its text (call it at start, not per use, all the same). */
  query<Row = unknown, Params extends SqlValue[] = SqlValue[]>(sql: string): SqlStatement<Row, Params>;
  /** Runs one statement. */
  run(sql: string, params?: SqlValue[]): void;
  /** Runs a script of several statements, without parameters. */
  exec(sql: string): void;
  /**
   * `fn` made transactional: BEGIN (a SAVEPOINT when already in one), COMMIT when it returns,
   * ROLLBACK when it throws.
   */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  close(): void;
}

export interface SqliteDriver {
  readonly name: "bun:sqlite" | "node:sqlite";
  /** Opens the database at `path`, creating the file if needed; ":memory:" is one in memory. */
  open(path: string): SqlDatabase;
}

/** bun:sqlite on Bun (a little faster there: see sqlite-node.ts), node:sqlite on any other runtime. */
export function runtimeSqlite(): SqliteDriver {
  return bunSqlite() ?? nodeSqlite;
}

/** Primary result codes by number (node:sqlite's `errcode`; extended codes keep them in the low byte). */
const PRIMARY_CODES: Record<number, string> = {
  1: "SQLITE_ERROR",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  8: "SQLITE_READONLY",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  19: "SQLITE_CONSTRAINT",
  26: "SQLITE_NOTADB",
};

/** SQLite's messages for the codes that matter here, for node:sqlite errors that carry no `errcode`. */
const MESSAGE_CODES: Array<[RegExp, string]> = [
  [/^database is locked/, "SQLITE_BUSY"],
  [/^database disk image is malformed/, "SQLITE_CORRUPT"],
  [/^file is not a database/, "SQLITE_NOTADB"],
  [/constraint failed/, "SQLITE_CONSTRAINT"],
];

/**
 * The SQLite result code of a driver's error as bun:sqlite names it (`SQLITE_BUSY`,
 * `SQLITE_CONSTRAINT_UNIQUE`; from node:sqlite the primary name only), or undefined for any other
 * error. node:sqlite puts the number in `errcode`; on Deno its `exec` errors carry only the message.
 */
export function sqliteErrorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (typeof e?.code === "string" && e.code.startsWith("SQLITE_")) return e.code;
  if (e?.code !== "ERR_SQLITE_ERROR") return undefined;
  if (typeof e.errcode === "number") return PRIMARY_CODES[e.errcode & 0xff] ?? `SQLITE_${e.errcode & 0xff}`;
  const message = typeof e.message === "string" ? e.message : "";
  return MESSAGE_CODES.find(([pattern]) => pattern.test(message))?.[1];
}
