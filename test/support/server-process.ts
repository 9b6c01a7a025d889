/** The real server as a child process (`bun server.ts`), for tests that kill it. */

import { join } from "node:path";
import type { Subprocess } from "bun";

export interface ServerProcess {
  readonly url: URL;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the process printed on stdout and stderr, for failure messages. */
  readonly output: string[];
}

const ROOT = join(import.meta.dir, "..", "..");
const alive = new Set<Subprocess>();

/** Starts `server.ts` with `env` and resolves once it prints `listening on http://HOST:PORT`. */
export async function spawnServer(env: Record<string, string>, timeoutMs = 10_000): Promise<ServerProcess> {
  const proc = Bun.spawn([process.execPath, "server.ts"], {
    cwd: ROOT,
    env: {
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      FRAME_RATE_LIMIT: "0",
      CONTROL_RATE_LIMIT: "0",
      CONNECT_RATE_PER_IP: "0",
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  alive.add(proc);
  proc.exited.then(() => alive.delete(proc));
  const output: string[] = [];
  drain(proc.stderr, output);
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "listening on" line: ${output.join("")}`)),
      timeoutMs,
    );
    proc.exited.then((code) => reject(new Error(`server exited with ${code}: ${output.join("")}`)));
    drain(proc.stdout, output, (line) => {
      const match = /^listening on (http:\/\/\S+)$/.exec(line);
      if (!match) return;
      clearTimeout(timer);
      resolve(new URL(match[1] as string));
    });
  }).catch((err) => {
    proc.kill(9);
    throw err;
  });
  return { url, proc, output };
}

/** Reads a stream to its end, keeping the text and calling `onLine` for each complete line. */
export async function drain(
  stream: ReadableStream<Uint8Array>,
  output: string[],
  onLine?: (line: string) => void,
) {
  const decoder = new TextDecoder();
  let pending = "";
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    const text = decoder.decode(value, { stream: true });
    output.push(text);
    pending += text;
    let nl = pending.indexOf("\n");
    while (nl !== -1) {
      onLine?.(pending.slice(0, nl).trim());
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
    }
  }
}

/** kill -9 and wait until the process is gone. */
export async function killHard(server: ServerProcess): Promise<void> {
  server.proc.kill(9);
  await server.proc.exited;
}

/** For afterAll: no process outlives the tests. */
export async function killAllServerProcesses(): Promise<void> {
  const procs = [...alive];
  for (const proc of procs) proc.kill(9);
  await Promise.all(procs.map((p) => p.exited));
}
