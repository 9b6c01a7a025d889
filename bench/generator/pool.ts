/** The orchestrator's side of the generator: worker processes, each command with a deadline. */
import type { Subprocess } from "bun";
import { CpuMeter, track } from "../processes";
import { BUN, ROOT } from "../servers";
import type { Command, Reply } from "./commands";

const WORKER = `${ROOT}/bench/generator/worker.ts`;

export class Worker {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly started: Promise<void>;
  readonly proc: Subprocess;

  constructor() {
    let ready!: () => void;
    this.started = new Promise<void>((resolve) => {
      ready = resolve;
    });
    this.proc = track(
      Bun.spawn({
        cmd: [BUN, WORKER],
        cwd: ROOT,
        stdin: "ignore",
        stdout: "inherit",
        stderr: "inherit",
        serialization: "json",
        ipc: (message: Reply) => {
          if (message.id === 0) {
            ready();
            return;
          }
          const w = this.waiting.get(message.id);
          if (!w) return;
          this.waiting.delete(message.id);
          if (message.ok) w.resolve(message.value);
          else w.reject(new Error(`generator: ${message.error}`));
        },
      }),
    );
    this.proc.exited.then((code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`generator process exited with ${code}`));
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Sends one command; rejects if no answer comes within `timeoutMs`. */
  async request<T>(command: Command, timeoutMs: number): Promise<T> {
    await withTimeout(this.started, 10_000, "generator process did not start");
    const id = this.nextId++;
    const answer = new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.proc.send({ id, command });
    try {
      return await withTimeout(
        answer,
        timeoutMs,
        `generator did not answer ${command.cmd} in ${timeoutMs} ms`,
      );
    } finally {
      this.waiting.delete(id);
    }
  }

  kill(): void {
    try {
      this.proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

export class Pool {
  readonly workers: Worker[];

  constructor(size: number) {
    this.workers = Array.from({ length: Math.max(1, size) }, () => new Worker());
  }

  get pids(): number[] {
    return this.workers.map((w) => w.pid);
  }

  /** The same command to every worker, answers in worker order. */
  all<T>(command: Command | ((w: Worker, i: number) => Command), timeoutMs: number): Promise<T[]> {
    return Promise.all(
      this.workers.map((w, i) =>
        w.request<T>(typeof command === "function" ? command(w, i) : command, timeoutMs),
      ),
    );
  }

  meter(serverPid: number): CpuMeter {
    return new CpuMeter([serverPid, ...this.pids]);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.request({ cmd: "exit" }, 2000)));
    for (const w of this.workers) w.kill();
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
