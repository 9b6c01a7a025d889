/**
 * The rooms of the whole cluster for `GET /api/rooms`. The scripts that add and remove users keep a
 * sorted set per partition, P rooms (room -> its number of users, only rooms that have any), so one
 * read per partition answers for every process, and its cost grows with the rooms in use, never with
 * the keys or the history.
 */
import type { RoomCount } from "../../chat/engine";
import type { KeySpace } from "./key-space";
import type { RedisLink } from "./redis-link";

export function roomsKey(prefix: string): string {
  return `${prefix}rooms`;
}

/**
 * Every room with users on any process, with its count, busiest first (then by name). A partition
 * that cannot answer (its primary failing over) is left out while the others answer; with none
 * answering, it fails.
 */
export async function clusterRooms(link: RedisLink, keys: KeySpace): Promise<RoomCount[]> {
  const replies = await Promise.allSettled(
    keys.partitions.map(
      // RESP3 answers WITHSCORES as [member, score] pairs.
      (prefix) =>
        link.send("ZRANGE", [roomsKey(prefix), "0", "-1", "WITHSCORES"]) as Promise<
          Array<[string, number | string]>
        >,
    ),
  );
  const answered = replies.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  if (answered.length === 0) throw (replies[0] as PromiseRejectedResult).reason;
  return answered
    .flat()
    .map(([room, users]) => ({ room, users: Number(users) }))
    .sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1));
}
