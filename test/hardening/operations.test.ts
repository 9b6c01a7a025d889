/**
 * Small operational edges: a port in use is a configuration error, not a stack trace; close codes a
 * client picks do not grow the metrics.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServer, stopAllServers } from "../support/test-server";
import { eventually } from "../support/timing";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

describe("a port in use", () => {
  it("stops the server at start with `configuration error: PORT: ... in use` and exit code 1", async () => {
    const holder = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("taken") });
    try {
      const proc = Bun.spawn([process.execPath, "server.ts"], {
        env: { ...process.env, PORT: String(holder.port), HOST: "127.0.0.1", DB_PATH: ":memory:" },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      expect(code).toBe(1);
      expect(err.trim()).toBe(
        `configuration error: PORT: ${holder.port} is in use on 127.0.0.1; pick another with PORT`,
      );
    } finally {
      holder.stop(true);
    }
  });
});

describe("close codes in /metrics", () => {
  it("counts the codes a client picks outside the standard ones in one bucket", async () => {
    const srv = startTestServer();
    for (const code of [3000, 3999, 4000, 4999, 4001]) {
      const c = await connect(srv.url, { room: "r" });
      void c.close(code);
    }
    await eventually(() => srv.hub.connectionCount === 0, "every close to reach the server");
    const text = await (await fetch(new URL("/metrics", srv.url))).text();
    const closes = text.split("\n").filter((l) => l.startsWith("chat_closes_total{"));
    expect(closes.sort()).toEqual(['chat_closes_total{code="4001"} 1', 'chat_closes_total{code="other"} 4']);
  });
});

describe("the lockfile", () => {
  it("lists every optional platform package, so `npm install` on a fresh clone leaves it unchanged", async () => {
    const lock = (await Bun.file(new URL("../../package-lock.json", import.meta.url)).json()) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const missing: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
        const nested = `${path ? `${path}/` : ""}node_modules/${dep}`;
        if (!(nested in lock.packages) && !(`node_modules/${dep}` in lock.packages)) missing.push(dep);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe("a signal right after start", () => {
  it("is a graceful stop (exit 0), even when it comes the moment `listening` is printed", async () => {
    const codes: Array<number | null> = [];
    for (let i = 0; i < 5; i++) {
      const proc = Bun.spawn([process.execPath, "server.ts"], {
        env: { ...process.env, PORT: "0", HOST: "127.0.0.1", DB_PATH: ":memory:" },
        stdout: "pipe",
        stderr: "ignore",
      });
      const reader = proc.stdout.getReader();
      let seen = "";
      while (!seen.includes("listening on")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += new TextDecoder().decode(value);
      }
      proc.kill("SIGTERM");
      codes.push(await proc.exited);
    }
    expect(codes).toEqual([0, 0, 0, 0, 0]);
  }, 20_000);
});
