/** Where the partitioned layout puts keys: tags spread evenly over the slots, rooms spread over tags. */
import { describe, expect, it } from "bun:test";
import { crc16, KeySpace, partitionTag } from "../../server/engines/redis/key-space";

const slotOf = (prefix: string) => crc16(/\{([^}]*)\}/.exec(prefix)?.[1] as string) % 16384;

describe("KeySpace", () => {
  it("hashes as Redis Cluster does (CRC16/XMODEM)", () => {
    expect(crc16("123456789")).toBe(0x31c3);
    expect(crc16("")).toBe(0);
  });

  it("puts partition i's tag in the i-th of n equal slot ranges, for any n", () => {
    for (const n of [1, 2, 3, 4, 16, 100, 256]) {
      for (let i = 0; i < n; i++) {
        const slot = crc16(partitionTag(i, n)) % 16384;
        expect(slot).toBeGreaterThanOrEqual(Math.floor((i * 16384) / n));
        expect(slot).toBeLessThan(Math.floor(((i + 1) * 16384) / n));
      }
    }
  });

  it("spreads 16 partitions over 3 primaries holding equal slot ranges as 5, 5 and 6", () => {
    const keys = new KeySpace("chat:", 16, true);
    const perPrimary = [0, 1, 2].map(
      (primary) => keys.partitions.filter((p) => Math.floor((slotOf(p) * 3) / 16384) === primary).length,
    );
    expect(perPrimary.sort()).toEqual([5, 5, 6]);
  });

  it("keeps one Redis's plain layout untagged, and every key of a room under its partition's tag", () => {
    const plain = new KeySpace("chat:", 16, false);
    expect(plain.partitions).toEqual(["chat:"]);
    expect(plain.roomKey("lobby", "meta")).toBe("chat:room:lobby:meta");
    const tagged = new KeySpace("chat:", 16, true);
    const prefix = tagged.room("lobby");
    expect(tagged.partitions).toContain(prefix);
    expect(tagged.roomKey("lobby", "log")).toBe(`${prefix}room:lobby:log`);
    const used = new Set(Array.from({ length: 2000 }, (_, i) => tagged.room(`room-${i}`)));
    expect(used.size).toBe(16);
  });

  it("spreads v2 users over the partitions by id, and keeps what they share under one tag", () => {
    const plain = new KeySpace("chat:", 16, false);
    expect([plain.user("u1"), plain.users]).toEqual(["chat:", "chat:"]);
    const tagged = new KeySpace("chat:", 16, true);
    const used = new Set(Array.from({ length: 2000 }, (_, i) => tagged.user(`user-${i}`)));
    expect([...used].every((p) => tagged.partitions.includes(p))).toBe(true);
    expect(used.size).toBe(16);
    expect(tagged.users).toBe("chat:{u}:");
  });
});
