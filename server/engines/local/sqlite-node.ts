/**
 * node:sqlite (DatabaseSync) behind SqlDatabase: the driver on Deno, which has no bun:sqlite; it runs
 * on Bun as well, where the store contract tests run it too. Its statements are used as they are
 * (cached by text, as bun:sqlite's `query` does); transactions are BEGIN/COMMIT, savepoints nested.
 * On Bun it is a little slower than bun:sqlite, so the Bun server keeps bun:sqlite: SqliteStore on a
 * WAL file, 20,000 commits of 4 messages, CPU per call, two rounds each: commit 16.5-16.8 µs against
 * 15.9-16.4, a 50-message page 42.6-48.6 µs against 40.1-43.0 (on Deno 2.9.6: 20.5-21.7 and 119-123).
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { SqlDatabase, SqliteDriver, SqlStatement, SqlValue } from "./sqlite-driver";

class NodeDatabase implements SqlDatabase {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private savepoints = 0;

  constructor(path: string) {
    this.db = new DatabaseSync(path);
  }

  query<Row = unknown, Params extends SqlValue[] = SqlValue[]>(sql: string): SqlStatement<Row, Params> {
    return this.prepared(sql) as unknown as SqlStatement<Row, Params>;
  }

  /** Prepared, not exec'd: node:sqlite's exec errors carry no result code on Deno (SQLITE_BUSY matters). */
  run(sql: string, params: SqlValue[] = []): void {
    this.prepared(sql).run(...params);
  }

  exec(sql: string): void {
    this.db.exec(sql);
  }

  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return (...args: A): R => {
      if (!this.db.isTransaction) {
        this.run("BEGIN");
        try {
          const result = fn(...args);
          this.run("COMMIT");
          return result;
        } catch (err) {
          // A failed COMMIT may have ended the transaction already (SQLite rolls back on some errors).
          if (this.db.isTransaction) this.run("ROLLBACK");
          throw err;
        }
      }
      const name = `nested_${++this.savepoints}`;
      this.run(`SAVEPOINT ${name}`);
      try {
        const result = fn(...args);
        this.run(`RELEASE ${name}`);
        return result;
      } catch (err) {
        if (this.db.isTransaction) {
          this.run(`ROLLBACK TO ${name}`);
          this.run(`RELEASE ${name}`);
        }
        throw err;
      } finally {
        this.savepoints--;
      }
    };
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }

  private prepared(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

export const nodeSqlite: SqliteDriver = {
  name: "node:sqlite",
  open: (path) => new NodeDatabase(path),
};
