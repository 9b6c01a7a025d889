/**
 * The Deno entry (`npm run start:deno`): the same chat server as server.ts, on Deno.serve, with the
 * same configuration and output. Its translation of Deno's API is server/deno/deno-server.ts.
 */
import { answerCommandLine } from "./server/cli";
import { startDenoServer } from "./server/deno/deno-server";
import { serveMain } from "./server/serve-main";

if (import.meta.main) {
  // --help, --version, or a flag no setting has: answered before anything starts.
  answerCommandLine(process.argv.slice(2), "npm run start:deno --");
  await serveMain({ start: (config) => startDenoServer(config) });
}
