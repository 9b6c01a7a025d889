/**
 * A Redis Cluster that asks for a password, and one reached over TLS (REDIS_CLUSTER_PASSWORD,
 * REDIS_CLUSTER_TLS, REDIS_CLUSTER_TLS_CA): the chat runs through each with the right settings, and
 * without them the process does not start, saying which setting could not be reached. Each cluster is
 * one node holding every slot (what the login concerns is the same on more).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient } from "bun";
import { spawnServer } from "../support/server-process";
import { closeAllClients, connect } from "../support/test-client";
import { redisClusterAvailable } from "./support/redis-cluster";
import { freePort, HOST, RedisProcess } from "./support/redis-server";

const available = redisClusterAvailable();
const PASSWORD = "s3cret pass,word";
let dir: string;
const nodes: RedisProcess[] = [];

/** A one-node cluster: every slot assigned to it, once it says so. */
async function soloCluster(node: RedisProcess): Promise<void> {
  const client = new RedisClient(node.url);
  try {
    await client.send("CLUSTER", ["ADDSLOTSRANGE", "0", "16383"]);
    const deadline = Date.now() + 10_000;
    while (!String(await client.send("CLUSTER", ["INFO"])).includes("cluster_state:ok")) {
      if (Date.now() > deadline) throw new Error(`${node.address} never said cluster_state:ok`);
      await Bun.sleep(50);
    }
  } finally {
    client.close();
  }
}

function clusterNode(settings: ConstructorParameters<typeof RedisProcess>[1] = {}): Promise<RedisProcess> {
  return RedisProcess.start({
    ...settings,
    // Alone, a node never learns its address from a peer: without announcing it, CLUSTER SLOTS names none.
    extra: [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      "nodes.conf",
      "--cluster-announce-ip",
      HOST,
      ...(settings.extra ?? []),
    ],
  }).then((node) => {
    nodes.push(node);
    return node;
  });
}

/** openssl: a CA, and a certificate it signed for 127.0.0.1. */
async function certificates(): Promise<{ ca: string; cert: string; key: string }> {
  const at = (name: string) => join(dir, name);
  writeFileSync(at("ext.cnf"), `subjectAltName=IP:${HOST}\n`);
  const steps = [
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      at("ca.key"),
      "-out",
      at("ca.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=chat test CA",
    ],
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      at("node.key"),
      "-out",
      at("node.csr"),
      "-subj",
      `/CN=${HOST}`,
    ],
    [
      "x509",
      "-req",
      "-in",
      at("node.csr"),
      "-CA",
      at("ca.pem"),
      "-CAkey",
      at("ca.key"),
      "-CAcreateserial",
      "-out",
      at("node.pem"),
      "-days",
      "1",
      "-extfile",
      at("ext.cnf"),
    ],
  ];
  for (const args of steps) {
    const run = Bun.spawnSync(["openssl", ...args], { stderr: "pipe" });
    if (run.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${run.stderr.toString()}`);
  }
  return { ca: at("ca.pem"), cert: at("node.pem"), key: at("node.key") };
}

/** A chat sent through a server started with `env`, acknowledged with seq 1. */
async function chatsThrough(env: Record<string, string>): Promise<void> {
  const server = await spawnServer(env);
  try {
    const ann = await connect(server.url, { room: "login", nick: "ann" });
    ann.send({ type: "chat", text: "hello", id: "h" });
    expect((await ann.next("ack", (a) => a.id === "h")).seq).toBe(1);
  } finally {
    await closeAllClients();
    server.proc.kill();
    await server.proc.exited;
  }
}

async function refusedStart(env: Record<string, string>): Promise<string> {
  try {
    const server = await spawnServer(env);
    server.proc.kill();
    throw new Error("the server started");
  } catch (err) {
    return String(err);
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "chat-cluster-login-"));
});

afterAll(async () => {
  for (const node of nodes) await node.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!available)("a Redis Cluster that asks for a login", () => {
  it("chats with REDIS_CLUSTER_PASSWORD, and does not start without it", async () => {
    const node = await clusterNode({ password: PASSWORD });
    await soloCluster(node);
    await chatsThrough({ REDIS_CLUSTER: node.address, REDIS_CLUSTER_PASSWORD: PASSWORD });
    const refused = await refusedStart({ REDIS_CLUSTER: node.address, REDIS_COMMAND_TIMEOUT_MS: "1000" });
    expect(refused).toContain("configuration error: REDIS_CLUSTER: cannot reach Redis");
  }, 30_000);

  it("chats over TLS with REDIS_CLUSTER_TLS and the CA, and does not start without trusting it", async () => {
    const files = await certificates();
    const tlsPort = await freePort();
    const node = await clusterNode({ tls: { port: tlsPort, ...files }, extra: ["--tls-cluster", "yes"] });
    await soloCluster(node);
    const seeds = `${HOST}:${tlsPort}`;
    await chatsThrough({ REDIS_CLUSTER: seeds, REDIS_CLUSTER_TLS: "on", REDIS_CLUSTER_TLS_CA: files.ca });
    const untrusted = await refusedStart({
      REDIS_CLUSTER: seeds,
      REDIS_CLUSTER_TLS: "on",
      REDIS_COMMAND_TIMEOUT_MS: "1000",
    });
    expect(untrusted).toContain("configuration error: REDIS_CLUSTER: cannot reach Redis");
  }, 30_000);
});
