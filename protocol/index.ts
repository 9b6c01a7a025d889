/** Wire protocol v1: schemas, limits, codes and codecs shared by server, client and tests. */
export * from "./client-messages";
export * from "./codes";
export * from "./decode";
export * from "./limits";
export * from "./names";
export * from "./query";
export * from "./server-messages";
export * as v2 from "./v2";
