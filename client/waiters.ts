/** Promises waiting for one kind of moment (the next welcome), settled all together; each may be aborted. */
import { ChatError } from "./chat-error";

export interface ReadyOptions {
  /** Gives up waiting: `ready({ signal: AbortSignal.timeout(5000) })`. Rejects with `aborted`. */
  signal?: AbortSignal;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: ChatError): void;
}

export class Waiters<T> {
  private readonly waiting = new Set<Waiter<T>>();

  /** A promise settled by the next `resolve` or `reject`, or by `signal`. */
  wait({ signal }: ReadyOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const aborted = () =>
        new ChatError("aborted", "stopped waiting: the signal was aborted", { cause: signal?.reason });
      if (signal?.aborted) {
        reject(aborted());
        return;
      }
      const onAbort = () => {
        this.waiting.delete(waiter);
        reject(aborted());
      };
      const waiter: Waiter<T> = {
        resolve: (value) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(value);
        },
        reject: (error) => {
          signal?.removeEventListener("abort", onAbort);
          reject(error);
        },
      };
      this.waiting.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  resolve(value: T): void {
    const all = [...this.waiting];
    this.waiting.clear();
    for (const w of all) w.resolve(value);
  }

  reject(error: ChatError): void {
    const all = [...this.waiting];
    this.waiting.clear();
    for (const w of all) w.reject(error);
  }
}
