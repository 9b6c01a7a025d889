/**
 * Every process the suite starts goes through here, so that all of them are killed at the end,
 * on an error, on Ctrl-C or on an uncaught exception; and /proc readings of their CPU and memory.
 */
import { readFileSync } from "node:fs";
import type { Subprocess } from "bun";

const live = new Set<Subprocess>();

export function track<T extends Subprocess>(proc: T): T {
  live.add(proc);
  proc.exited.then(
    () => live.delete(proc),
    () => live.delete(proc),
  );
  return proc;
}

/** Sends SIGKILL to every tracked process still running (only those this suite started). */
export function killAll(): void {
  for (const proc of live) {
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Asks a process to stop with `signal`, then kills it if it is still there after `graceMs`. */
export async function stop(
  proc: Subprocess,
  signal: NodeJS.Signals = "SIGTERM",
  graceMs = 3000,
): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  try {
    proc.kill(signal);
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, graceMs);
  await proc.exited;
  clearTimeout(timer);
}

let installed = false;
/** Kills the tracked processes however this process ends. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
  process.on("uncaughtException", (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
}

/** Clock ticks a second for /proc/PID/stat; 100 on Linux unless the kernel was built otherwise. */
const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** CPU seconds (user + system, all threads) the process has used; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Resident and peak resident memory in bytes from /proc/PID/status. */
export function memory(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rss: kb("VmRSS") * 1024, peak: kb("VmHWM") * 1024 };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/** Busy and total jiffies of the whole machine, from the `cpu` line of /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] as string;
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

export interface CpuReading {
  seconds: number;
  /** Per pid, CPU cores used (1 = one core busy all the time). */
  cores: number[];
  cpuSeconds: number[];
  /** Cores busy with anything else on the machine (other processes, the kernel's softirqs aside). */
  otherCores: number;
}

/** CPU use of several processes between `start()` and `stop()`, and of everything else. */
export class CpuMeter {
  private t0 = 0;
  private before: number[] = [];
  private machine = { busy: 0, total: 0 };

  constructor(private readonly pids: readonly number[]) {}

  start(): void {
    this.t0 = performance.now();
    this.before = this.pids.map(cpuSeconds);
    this.machine = machineTicks();
  }

  stop(): CpuReading {
    const seconds = (performance.now() - this.t0) / 1000;
    const used = this.pids.map((pid, i) => cpuSeconds(pid) - (this.before[i] as number));
    const cores = used.map((u) => u / seconds);
    const m = machineTicks();
    const busyCores = ((m.busy - this.machine.busy) / (m.total - this.machine.total)) * NPROC;
    const ours = cores.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    return { seconds, cores, cpuSeconds: used, otherCores: Math.max(0, busyCores - ours) };
  }
}

export const NPROC = navigator.hardwareConcurrency || 1;
