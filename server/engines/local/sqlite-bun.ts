/**
 * bun:sqlite behind SqlDatabase: its own statements and transactions, unwrapped (the interface is
 * its shape), so the Bun server's hot path is what it was. Loaded through process.getBuiltinModule,
 * which answers undefined where there is no bun:sqlite (Deno), so importing this module costs nothing
 * there.
 */
import type { Database } from "bun:sqlite";
import type { SqlDatabase, SqliteDriver, SqlStatement, SqlValue } from "./sqlite-driver";

type BunSqlite = typeof import("bun:sqlite");

class BunDatabase implements SqlDatabase {
  constructor(private readonly db: Database) {}

  query<Row = unknown, Params extends SqlValue[] = SqlValue[]>(sql: string): SqlStatement<Row, Params> {
    return this.db.query<Row, Params>(sql) as SqlStatement<Row, Params>;
  }

  run(sql: string, params: SqlValue[] = []): void {
    this.db.run(sql, params);
  }

  exec(sql: string): void {
    this.db.run(sql);
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return this.db.transaction(fn) as unknown as (...args: A) => R;
  }

  close(): void {
    this.db.close();
  }
}

let driver: SqliteDriver | null | undefined;

/** The bun:sqlite driver, or undefined when this runtime has no bun:sqlite. */
export function bunSqlite(): SqliteDriver | undefined {
  if (driver === undefined) {
    const mod = process.getBuiltinModule?.("bun:sqlite") as BunSqlite | undefined;
    driver = mod
      ? {
          name: "bun:sqlite",
          // strict: a missing parameter is an error, not a NULL bound in silence.
          open: (path) => new BunDatabase(new mod.Database(path, { create: true, strict: true })),
        }
      : null;
  }
  return driver ?? undefined;
}
