/**
 * Seeded fuzzing over real sockets: junk, random JSON, near-miss messages, prototype-pollution keys,
 * deep nesting, huge numbers and binary frames, in batches. A model built on the protocol's own
 * decoder predicts the one reply each frame must get; a bystander in the room must see nothing but
 * the valid chats and renames; memory must stay flat and Object.prototype untouched.
 * FUZZ_SEED=n replays another seed.
 */
import { afterAll, describe, expect, it } from "bun:test";
import fc from "fast-check";
import {
  type ClientMessage,
  decodeClientMessage,
  decodeServerMessage,
  type ErrorCode,
  nickKey,
  normalizeNick,
  normalizeRoom,
  type PresenceEvent,
  type ServerMessage,
} from "../../protocol";
import { closeAllClients, connect, connectUrl } from "../support/test-client";
import { startTestServer, stopAllServers } from "../support/test-server";

afterAll(async () => {
  await closeAllClients();
  await stopAllServers();
});

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_611);
const ROOM = "fz";
const FUZZER = "fuzzer";
const BYSTANDER = "bystander";
const MAX_PAYLOAD = 32_768;
/** The hub's dedupe window (DEFAULT_HUB_LIMITS.dedupeWindow), mirrored by the model. */
const DEDUPE_WINDOW = 1000;

// ---------------------------------------------------------------------------------------------
// Building frames: a tiny JSON writer that can emit what JSON.stringify cannot (raw number tokens
// like 1e309, duplicate keys, own `__proto__` keys).

/** A token written as is. */
class Raw {
  constructor(readonly text: string) {}
}

/** An object as an ordered list of entries: keys may repeat and may be `__proto__`. */
class Obj {
  constructor(readonly entries: ReadonlyArray<readonly [string, unknown]>) {}
}

function write(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Obj) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${write(x)}`).join(",")}}`;
  if (Array.isArray(v)) return `[${v.map(write).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .map((k) => `${JSON.stringify(k)}:${write(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** A frame as sent: text, or binary. */
type Frame = { text: string } | { binary: Uint8Array };

/** What the server receives: a text frame travels as UTF-8, so lone surrogates become U+FFFD. */
function textFrame(s: string): Frame {
  return { text: new TextDecoder().decode(new TextEncoder().encode(s)) };
}

type Entries = Array<readonly [string, unknown]>;

const BASES: Entries[] = [
  [
    ["type", "chat"],
    ["text", "hello"],
    ["id", "c-1"],
  ],
  [
    ["type", "chat"],
    ["text", "hello"],
  ],
  [
    ["type", "nick"],
    ["nick", FUZZER],
  ],
  [
    ["type", "join"],
    ["room", ROOM],
    ["since", 0],
  ],
  [
    ["type", "history"],
    ["before", 10],
    ["limit", 5],
  ],
  [["type", "who"]],
  [["type", "typing"]],
];

const PROTO_KEYS = ["__proto__", "constructor", "prototype"];

const HUGE_NUMBERS = [
  "1e309",
  "-1e309",
  "18446744073709551616", // 2**64
  "9007199254740993", // 2**53 + 1
  "1e400",
  "1e-400",
  "123456789012345678901234567890",
];
const ODD_NUMBERS = ["-1", "-0", "0", "1.5", "-0.5", "0.1e1", "1E2", "2e0", "4.0", "-9007199254740991"];

/** Values of the wrong type for any field. */
const WRONG_TYPES: unknown[] = [
  42,
  -1,
  1.5,
  true,
  false,
  null,
  [],
  new Obj([]),
  "",
  "str",
  ["chat"],
  new Obj([["type", "chat"]]),
  ...HUGE_NUMBERS.map((t) => new Raw(t)),
];

/** Strings that break one rule or another: invisible, bidi, control, markup, lone surrogates. */
const BAD_STRINGS: unknown[] = [
  "\u202Eevil",
  "a\u200Bb",
  "\u3164",
  "\u2066x",
  "tab\there",
  "new\nline",
  "nul\u0000",
  "<script>alert(1)</script>",
  "a/b",
  "😀",
  "\uFEFF",
  "e\u0301",
  " padded ",
  "\u2028",
  " ",
  "\t\n",
  new Raw('"\\ud800"'),
  new Raw('"x\\udfffy"'),
  new Raw('"\\u0000"'),
];

/** Values past each field's limit. */
const TOO_LONG: Array<readonly [string, unknown]> = [
  ["text", "x".repeat(4001)],
  ["text", "😀".repeat(4001)],
  ["text", " ".repeat(5000)],
  ["id", "i".repeat(65)],
  ["id", "😀".repeat(65)],
  ["nick", "n".repeat(33)],
  ["nick", "ñ".repeat(257)],
  ["room", "r".repeat(65)],
  ["type", "chat".repeat(100)],
  ["limit", 201],
  ["limit", 1_000_000],
];

const TYPE_VARIANTS = [
  "Chat",
  "CHAT",
  " chat",
  "chat ",
  "chat\u0000",
  "",
  "dance",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "valueOf",
];

const POLLUTION_VALUES = [
  new Obj([["polluted", "yes"]]),
  new Obj([["__proto__", new Obj([["polluted", "yes"]])]]),
  new Obj([["prototype", new Obj([["polluted", "yes"]])]]),
  new Obj([["constructor", new Obj([["prototype", new Obj([["polluted", "yes"]])]])]]),
  new Obj([["isAdmin", true]]),
];

const base = fc.constantFrom(...BASES);
const anyKey = fc.oneof(
  fc.constantFrom(...PROTO_KEYS, "id", "type", "text", "nick", "room", "since", "before", "limit", "extra"),
  fc.string({ maxLength: 8 }),
);

function replaceAt(entries: Entries, index: number, value: unknown): Entries {
  const i = index % entries.length;
  return entries.map((e, j) => (j === i ? ([e[0], value] as const) : e));
}

function setKey(entries: Entries, key: string, value: unknown): Entries {
  const at = entries.findIndex(([k]) => k === key);
  return at === -1 ? [...entries, [key, value] as const] : replaceAt(entries, at, value);
}

/** A valid message with exactly one thing wrong. */
const nearMiss: fc.Arbitrary<Frame> = fc
  .oneof(
    fc
      .tuple(base, fc.nat(), fc.oneof(fc.constantFrom(...WRONG_TYPES), fc.jsonValue({ maxDepth: 2 })))
      .map(([b, i, v]) => replaceAt(b, i, v)),
    fc
      .tuple(base, anyKey, fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(...POLLUTION_VALUES)))
      .map(([b, k, v]): Entries => [...b, [k, v]]),
    fc.tuple(base, fc.nat()).map(([b, i]) => b.filter((_, j) => j !== i % b.length)),
    fc.tuple(base, fc.constantFrom(...TOO_LONG)).map(([b, [k, v]]) => setKey(b, k, v)),
    fc
      .tuple(
        base,
        fc.constantFrom("since", "before", "limit"),
        fc.constantFrom(...HUGE_NUMBERS, ...ODD_NUMBERS),
      )
      .map(([b, k, t]) => setKey(b, k, new Raw(t))),
    fc.tuple(base, fc.nat(), fc.constantFrom(...BAD_STRINGS)).map(([b, i, v]) => replaceAt(b, i, v)),
    fc.tuple(base, fc.constantFrom(...TYPE_VARIANTS)).map(([b, t]) => setKey(b, "type", t)),
    // A duplicate key: JSON.parse keeps the last one.
    fc.tuple(base, fc.nat(), fc.jsonValue({ maxDepth: 1 })).map(([b, i, v]): Entries => {
      const key = (b[i % b.length] as readonly [string, unknown])[0];
      return [...b, [key, v]];
    }),
  )
  .map((entries) => textFrame(write(new Obj(entries))));

/** Prototype-pollution keys at the top level, nested in a field, and as the type itself. */
const pollution: fc.Arbitrary<Frame> = fc
  .tuple(base, fc.constantFrom(...PROTO_KEYS), fc.constantFrom(...POLLUTION_VALUES), fc.nat(), fc.nat(3))
  .map(([b, key, value, i, where]) => {
    switch (where) {
      case 0:
        return [...b, [key, value] as const];
      case 1:
        return replaceAt(b, i, new Obj([[key, value]]));
      case 2:
        return [[key, new Obj(b)] as const];
      default:
        return setKey(b, "type", key);
    }
  })
  .map((entries) => textFrame(write(new Obj(entries))));

function nest(depth: number, shape: number): string {
  switch (shape) {
    case 0:
      return `${"[".repeat(depth)}${"]".repeat(depth)}`;
    case 1:
      return `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    case 2:
      return `${'[{"__proto__":'.repeat(depth)}0${"}]".repeat(depth)}`;
    default:
      return "[".repeat(depth); // never closed
  }
}

/** Deep nesting: the whole frame, a field, or the type. */
const deep: fc.Arbitrary<Frame> = fc
  .tuple(fc.integer({ min: 20, max: 4000 }), fc.nat(3), fc.nat(3))
  .map(([depth, shape, where]) => {
    const n = nest(depth, shape);
    switch (where) {
      case 0:
        return textFrame(n);
      case 1:
        return textFrame(`{"type":"chat","text":"hi","x":${n}}`);
      case 2:
        return textFrame(`{"type":"history","limit":${n}}`);
      default:
        return textFrame(`{"type":${n}}`);
    }
  });

const junk: fc.Arbitrary<Frame> = fc
  .oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.string({ unit: "grapheme", maxLength: 100 }),
    fc.string({ maxLength: 100 }),
    fc.constantFrom(
      "",
      " ",
      "{",
      "}",
      "[]",
      "{}",
      "null",
      "true",
      "0",
      "-0",
      "1e309",
      '""',
      '"chat"',
      "{'type':'who'}",
      '{"type":"who"',
      '{"type":"who"}}',
      '{"type":"who"} ',
      ' {"type":"who"}',
      '\uFEFF{"type":"who"}',
      '{"type":"who"}\u0000',
      "NaN",
      "Infinity",
      "undefined",
      '{"type":"who",}',
      '[{"type":"who"}]',
      '{"type":"w\\u0068o"}',
      '{"type":"who","type":"who"}',
      '{"type":"chat","text":"\\ud83d"}',
    ),
  )
  .map(textFrame);

const TYPES = ["chat", "nick", "join", "history", "who", "typing"];
const randomJson: fc.Arbitrary<Frame> = fc
  .oneof(
    fc.json({ maxDepth: 4 }),
    fc.jsonValue({ maxDepth: 3 }).map(write),
    fc
      .tuple(
        fc.constantFrom(...TYPES),
        fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
      )
      .map(([type, rest]) => write(new Obj([["type", type], ...Object.entries(rest)]))),
  )
  .map(textFrame);

const binary: fc.Arbitrary<Frame> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((binary) => ({ binary })),
  base.map((b) => ({ binary: new TextEncoder().encode(write(new Obj(b))) })),
);

const validText = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
);
const valid: fc.Arbitrary<Frame> = fc
  .oneof(
    fc
      .tuple(validText, fc.option(fc.string({ minLength: 1, maxLength: 3 }), { nil: undefined }))
      .map(([text, id]) => JSON.stringify({ type: "chat", text, id })),
    fc.constant('{"type":"who"}'),
    fc
      .record({
        before: fc.option(fc.nat(), { nil: undefined }),
        limit: fc.option(fc.integer({ min: 1, max: 200 }), { nil: undefined }),
      })
      .map((r) => JSON.stringify({ type: "history", ...r })),
    fc.constant('{"type":"typing"}'),
    fc
      .constantFrom(FUZZER, "fuzzer-2", "Fuzzer", BYSTANDER, "BYSTANDER")
      .map((nick) => JSON.stringify({ type: "nick", nick })),
    fc
      .option(fc.nat({ max: 1000 }), { nil: undefined })
      .map((since) => JSON.stringify({ type: "join", room: ROOM, since })),
  )
  .map(textFrame);

function bytes(frame: Frame): number {
  return "binary" in frame ? frame.binary.length : new TextEncoder().encode(frame.text).length;
}

function decodeLocally(frame: Frame) {
  return decodeClientMessage("binary" in frame ? frame.binary : frame.text);
}

/** Frames this test can model: within the payload limit, and no valid join to another room. */
function modelled(frame: Frame): boolean {
  if (bytes(frame) > MAX_PAYLOAD - 64) return false;
  const d = decodeLocally(frame);
  return !(d.ok && d.value.type === "join" && normalizeRoom(d.value.room) !== ROOM);
}

type Kind = "junk" | "json" | "near-miss" | "pollution" | "deep" | "binary" | "valid";

function kind(name: Kind, arbitrary: fc.Arbitrary<Frame>, weight: number) {
  return { arbitrary: arbitrary.map((f): [Kind, Frame] => [name, f]), weight };
}

const frameArb: fc.Arbitrary<[Kind, Frame]> = fc
  .oneof(
    kind("junk", junk, 3),
    kind("json", randomJson, 3),
    kind("near-miss", nearMiss, 7),
    kind("pollution", pollution, 2),
    kind("deep", deep, 1),
    kind("binary", binary, 1),
    kind("valid", valid, 1),
  )
  .filter(([, f]) => modelled(f));

// ---------------------------------------------------------------------------------------------
// The model: what the server must answer to each frame, from the protocol's own decoder.

interface Expected {
  errors: Array<[ErrorCode] | [ErrorCode, string]>;
  acks: string[];
  chats: Array<[number, string, string]>;
  events: PresenceEvent[];
  users: number;
  history: number;
  welcome: number;
  other: string[];
}

function emptyExpected(): Expected {
  return { errors: [], acks: [], chats: [], events: [], users: 0, history: 0, welcome: 0, other: [] };
}

class Model {
  nick = FUZZER;
  nextSeq = 1;
  /** id -> seq, oldest first, as the hub's dedupe window. */
  readonly ids = new Map<string, number>();
  readonly allChats: Array<[number, string, string]> = [];
  readonly allEvents: PresenceEvent[] = [];
  readonly nicks = new Set([FUZZER]);
  typing = 0;

  apply(frame: Frame, into: Expected): void {
    const d = decodeLocally(frame);
    if (!d.ok) {
      into.errors.push(d.error.id === undefined ? [d.error.code] : [d.error.code, d.error.id]);
      return;
    }
    this.valid(d.value, into);
  }

  valid(msg: ClientMessage, into: Expected): void {
    switch (msg.type) {
      case "chat": {
        const old = msg.id === undefined ? undefined : this.ids.get(msg.id);
        if (msg.id !== undefined && old !== undefined) {
          into.acks.push(`${msg.id} -> ${old}`);
          return;
        }
        const seq = this.nextSeq++;
        const chat: [number, string, string] = [seq, this.nick, msg.text];
        into.chats.push(chat);
        this.allChats.push(chat);
        if (msg.id !== undefined) {
          into.acks.push(`${msg.id} -> ${seq}`);
          this.ids.set(msg.id, seq);
          while (this.ids.size > DEDUPE_WINDOW) this.ids.delete(this.ids.keys().next().value as string);
        }
        return;
      }
      case "nick": {
        const nick = normalizeNick(msg.nick);
        if (nick === this.nick) return;
        if (nickKey(nick) === nickKey(BYSTANDER)) {
          into.errors.push(["nick_taken"]);
          return;
        }
        const event: PresenceEvent = { event: "nick", from: this.nick, nick };
        into.events.push(event);
        this.allEvents.push(event);
        this.nick = nick;
        this.nicks.add(nick);
        return;
      }
      case "join":
        into.welcome++;
        return;
      case "history":
        into.history++;
        return;
      case "who":
        into.users++;
        return;
      case "typing":
        this.typing++;
        return;
    }
  }
}

function summarize(messages: readonly ServerMessage[]): Expected {
  const s = emptyExpected();
  for (const m of messages) {
    switch (m.type) {
      case "error":
        s.errors.push(m.id === undefined ? [m.code] : [m.code, m.id]);
        break;
      case "ack":
        s.acks.push(`${m.id} -> ${m.seq}`);
        break;
      case "chat":
        s.chats.push([m.seq, m.nick, m.text]);
        break;
      case "presence":
        s.events.push(...m.events);
        break;
      case "users":
        s.users++;
        break;
      case "history":
        s.history++;
        break;
      case "welcome":
        s.welcome++;
        break;
      default:
        s.other.push(m.type);
    }
  }
  s.acks.sort();
  return s;
}

/**
 * The fuzzing socket: decodes every reply with the protocol's decoder like TestClient, but keeps only
 * the current batch's replies, so the memory figures are the server's and not the test's.
 */
class FuzzSocket {
  batch: ServerMessage[] = [];
  readonly undecodable: string[] = [];
  closeCode: number | undefined;
  private readonly counts = new Map<string, number>();
  private wake: () => void = () => {};

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener("message", (ev) => {
      const d = decodeServerMessage(ev.data as string);
      if (d.ok) {
        this.batch.push(d.value);
        this.counts.set(d.value.type, this.count(d.value.type) + 1);
      } else this.undecodable.push(`${d.error.message}: ${String(ev.data).slice(0, 200)}`);
      this.wake();
    });
    ws.addEventListener("close", (ev) => {
      this.closeCode = ev.code;
      this.wake();
    });
  }

  static async open(url: URL): Promise<FuzzSocket> {
    const socket = new FuzzSocket(new WebSocket(url));
    if (!(await socket.until((s) => s.count("welcome") === 1))) throw new Error("no welcome for the fuzzer");
    return socket;
  }

  count(type: string): number {
    return this.counts.get(type) ?? 0;
  }

  send(data: string | Uint8Array): void {
    this.ws.send(data);
  }

  /**
   * Resolves true once `done` holds; false on a close, an undecodable frame or after `timeoutMs`, and
   * the caller's comparison then says what is missing.
   */
  until(done: (s: this) => boolean, timeoutMs = 3000): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.wake = () => {};
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.wake = () => {
        if (done(this)) finish(true);
        else if (this.closeCode !== undefined || this.undecodable.length > 0) finish(false);
      };
      this.wake();
    });
  }

  /** The replies since the last call. */
  take(): ServerMessage[] {
    const got = this.batch;
    this.batch = [];
    return got;
  }

  close(): void {
    this.ws.close();
  }
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function memory(): { heap: number; rss: number } {
  Bun.gc(true);
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

describe("fuzzing over real sockets", () => {
  it("answers every frame once, never with internal, and leaves the room, memory and prototypes alone", async () => {
    const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const arrayProtoBefore = Object.getOwnPropertyNames(Array.prototype).sort();
    const srv = startTestServer({ RATE_LIMIT: "0", MAX_PAYLOAD: String(MAX_PAYLOAD) });
    const bystander = await connect(srv.url, { room: ROOM, nick: BYSTANDER });
    const fuzzer = await FuzzSocket.open(connectUrl(srv.url, { room: ROOM, nick: FUZZER }));
    await bystander.next("presence");
    const bystanderFrom = bystander.received.length;

    const model = new Model();
    let fuzzed = 0;
    let sentinels = 0;
    const started = performance.now();

    const kinds = new Map<string, number>();
    const codes = new Map<string, number>();
    const tally = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

    /**
     * Sends a batch, then a sentinel chat and a `who`: the chat comes out of the batch's last flush
     * and the `who` is answered after it, so once that answer is in, every reply to the batch is.
     */
    async function batch(tagged: Array<[Kind, Frame]>): Promise<void> {
      const frames = tagged.map(([k, f]) => {
        tally(kinds, k);
        return f;
      });
      fuzzer.take();
      const chatsBefore = fuzzer.count("chat");
      const usersBefore = fuzzer.count("users");
      const want = emptyExpected();
      for (const f of frames) {
        model.apply(f, want);
        fuzzer.send("binary" in f ? f.binary : f.text);
      }
      fuzzed += frames.length;
      model.valid({ type: "chat", text: `sentinel #${++sentinels}` }, want);
      fuzzer.send(JSON.stringify({ type: "chat", text: `sentinel #${sentinels}` }));
      await fuzzer.until((s) => s.count("chat") >= chatsBefore + want.chats.length);
      model.valid({ type: "who" }, want);
      fuzzer.send(JSON.stringify({ type: "who" }));
      await fuzzer.until((s) => s.count("users") >= usersBefore + want.users);
      const got = fuzzer.take();
      for (const m of got) if (m.type === "error") tally(codes, m.code);
      expect(fuzzer.undecodable).toEqual([]);
      expect(fuzzer.closeCode).toBeUndefined();
      const internal = got.filter((m) => m.type === "error" && m.code === "internal");
      expect(internal).toEqual([]);
      want.acks.sort();
      expect(summarize(got)).toEqual(want);
    }

    const batches = fc.array(frameArb, { minLength: 20, maxLength: 60 });
    const run = (seed: number, numRuns: number) =>
      fc.assert(
        fc.asyncProperty(batches, (frames) => batch(frames)),
        { seed, numRuns, endOnFailure: true },
      );

    await run(SEED + 1, 100); // warm-up: JIT, zod's caches, the room's history
    const warm = memory();
    const warmFrames = fuzzed;
    await run(SEED, 500);
    const end = memory();
    const seconds = (performance.now() - started) / 1000;

    // The server goes on: a final valid chat is stored and acknowledged.
    fuzzer.send(JSON.stringify({ type: "chat", text: "final words", id: "final-id" }));
    await fuzzer.until((s) => s.batch.some((m) => m.type === "ack"));
    const ack = fuzzer.take().find((m) => m.type === "ack");
    expect(ack).toEqual({ type: "ack", id: "final-id", seq: model.nextSeq });
    if (ack?.type !== "ack") return;
    await bystander.waitFor("chat", (m) => m.text === "final words");
    model.allChats.push([ack.seq, model.nick, "final words"]);
    expect(srv.hub.connectionCount).toBe(2);
    expect(fuzzer.closeCode).toBeUndefined();
    fuzzer.close();

    // The bystander saw the valid chats and renames, typing from the fuzzer, and nothing else.
    const seen = bystander.received.slice(bystanderFrom);
    const typing = seen.filter((m) => m.type === "typing");
    expect(typing.every((t) => model.nicks.has(t.nick))).toBe(true);
    expect(typing.length).toBeLessThanOrEqual(model.typing);
    const rest = summarize(seen.filter((m) => m.type !== "typing"));
    expect(rest).toEqual({ ...emptyExpected(), chats: model.allChats, events: model.allEvents });

    // No prototype was polluted by any key the fuzzer sent.
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore);
    expect(Object.getOwnPropertyNames(Array.prototype).sort()).toEqual(arrayProtoBefore);
    const probe = {} as Record<string, unknown>;
    expect([probe.polluted, probe.isAdmin, probe.a]).toEqual([undefined, undefined, undefined]);

    const heapGrowth = end.heap - warm.heap;
    const rssGrowth = end.rss - warm.rss;
    console.log(
      `fuzz: seed ${SEED}, ${fuzzed} frames fuzzed (${warmFrames} in the warm-up) + ${sentinels * 2} sentinels ` +
        `in ${seconds.toFixed(1)} s (warm-up included); ${model.allChats.length} valid chats; heap ${mb(warm.heap)} -> ${mb(end.heap)}` +
        ` (${mb(heapGrowth)}), rss ${mb(warm.rss)} -> ${mb(end.rss)} (${mb(rssGrowth)})\n` +
        `  frames by kind: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}\n` +
        `  errors by code: ${[...codes].map(([k, n]) => `${k} ${n}`).join(", ")}`,
    );
    expect(fuzzed).toBeGreaterThanOrEqual(5000);
    // Generous bounds: a leak of a kilobyte per frame would pass 20 MB of heap over this run.
    expect(heapGrowth).toBeLessThan(20 * 1024 * 1024);
    expect(rssGrowth).toBeLessThan(200 * 1024 * 1024);
  }, 60_000);
});
