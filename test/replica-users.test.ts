/**
 * A replica's sorted user list is kept up to date event by event (a binary insert or removal, not a
 * sort per change): after any sequence of joins, leaves and renames it equals the list sorted anew.
 */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { compareNicks, type PresenceEvent } from "../protocol";
import { Replica, resorted } from "../server/chat/replica";

// Names that collide by case, by look-alike letters and by folding, and names that tie but for case.
const NAMES = [
  "ann",
  "Ann",
  "ANN",
  "bob",
  "Bob",
  "сat",
  "cat",
  "ß",
  "ss",
  "dan",
  "Émile",
  "émile",
  "zoë",
  "a",
  "b",
];

const event: fc.Arbitrary<PresenceEvent> = fc.oneof(
  fc.constantFrom(...NAMES).map((nick) => ({ event: "join" as const, nick })),
  fc.constantFrom(...NAMES).map((nick) => ({ event: "leave" as const, nick })),
  fc
    .tuple(fc.constantFrom(...NAMES), fc.constantFrom(...NAMES))
    .map(([from, nick]) => ({ event: "nick" as const, from, nick })),
);

describe("Replica.sortedUsers", () => {
  it("equals the users sorted anew after every presence event", () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), fc.integer({ min: 0, max: 60 }), (events, readAt) => {
        const r = new Replica("room");
        r.applySnapshot({ lastSeq: 0, lastN: 0, users: [], recent: [], epoch: "e" });
        events.forEach((e, i) => {
          // The list is cached from the first read on: read it at some point, then after every event.
          if (i >= readAt) r.sortedUsers();
          r.applyPresence(e);
          if (i >= readAt) expect(r.sortedUsers()).toEqual([...r.users.values()].sort(compareNicks));
        });
      }),
      { numRuns: 500 },
    );
  });

  it("hands out a new array on a change, leaving the one a caller holds as it was", () => {
    const before = ["ann", "bob"];
    const after = resorted(before, ["ann"], "cat");
    expect(before).toEqual(["ann", "bob"]);
    expect(after).toEqual(["bob", "cat"]);
  });
});
