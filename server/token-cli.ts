/** Mints an access token for operators: `AUTH_SECRET=... npm run token -- --nick ann --ttl 3600`. */
import { isValidNick, normalizeNick } from "../protocol";
import { TokenAuthority } from "./auth";
import { ConfigError, flagsToEnv } from "./config";

export async function mintToken(env: Record<string, string | undefined>, argv: string[]): Promise<string> {
  const flags = flagsToEnv(argv);
  const secret = env.AUTH_SECRET;
  if (!secret || secret.length < 16)
    throw new ConfigError("AUTH_SECRET", "set it (16+ characters) to mint tokens");
  const nick = normalizeNick(flags.NICK ?? "");
  if (!isValidNick(nick)) throw new ConfigError("--nick", "give a valid nickname");
  const ttl = Number(flags.TTL ?? "3600");
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new ConfigError("--ttl", "give a lifetime in seconds");
  return new TokenAuthority(secret).sign({ nick, exp: Math.floor(Date.now() / 1000) + ttl });
}

if (import.meta.main) {
  mintToken(process.env, process.argv.slice(2)).then(
    (token) => console.log(token),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
