/** Hubs for tests without sockets: the chat core over the local engine or the Redis one, on a fake network. */

import type { Connection } from "../../server/chat/connection";
import { ChatHub } from "../../server/chat/hub";
import { type ChatLimits, chatLimits } from "../../server/chat/limits";
import type { Fanout } from "../../server/chat/peer";
import { DEFAULT_CONFIG } from "../../server/config";
import { LocalEngine } from "../../server/engines/local/local-engine";
import { MemoryStore } from "../../server/engines/local/memory-store";
import type { ChatStore } from "../../server/engines/local/store";
import { RedisEngine } from "../../server/engines/redis/redis-engine";
import type { HostPort } from "../../server/engines/redis/wire-client";

export interface HubOptions {
  fanout: Fanout;
  now?: () => number;
  /** Turns are run by hand (`hub.flush()`) unless a scheduler is given. */
  schedule?: (fn: () => void) => void;
  timer?: (fn: () => void, ms: number) => void;
  /** Tests send fast: no chat rate limit unless they set one. */
  limits?: Partial<ChatLimits>;
}

function limitsOf(o: HubOptions): ChatLimits {
  return { ...chatLimits(DEFAULT_CONFIG), rateLimit: 0, ...o.limits };
}

export function localHub(o: HubOptions & { store?: ChatStore }): ChatHub {
  const limits = limitsOf(o);
  const schedule = o.schedule ?? (() => {});
  const timer = o.timer ?? (() => {});
  const engine = new LocalEngine<Connection>({
    store: o.store ?? new MemoryStore(),
    resumeTtlMs: limits.resumeTtlMs,
    dedupeWindow: limits.dedupeWindow,
    now: o.now,
    schedule,
    timer,
  });
  return new ChatHub({ engine, fanout: o.fanout, limits, now: o.now, timer });
}

/** A hub over Redis at `url`, or over the Redis Cluster of seed nodes `cluster` when given. */
export function redisHub(o: HubOptions & { url: string; prefix: string; cluster?: HostPort[] }): ChatHub {
  const limits = limitsOf(o);
  const engine = new RedisEngine<Connection>({
    url: o.url,
    cluster: o.cluster,
    prefix: o.prefix,
    resumeTtlMs: limits.resumeTtlMs,
    dedupeWindow: limits.dedupeWindow,
    now: o.now,
    schedule: o.schedule ?? (() => {}),
  });
  return new ChatHub({ engine, fanout: o.fanout, limits, now: o.now, timer: o.timer });
}
