/** Configuration from the environment (and `--name value` flags) by the table of settings.ts: parsed once, failing fast. */
import { type Config, CROSS_RULES, SETTING_LIST } from "./settings";

export type { Config };

import { BadValue, type Setting } from "./settings-parsers";

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** `--port 8080` and `--port=8080` set PORT; flags win over the environment. */
export function flagsToEnv(argv: readonly string[]): Env {
  const env: Env = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    const name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).toUpperCase().replaceAll("-", "_");
    if (eq !== -1) env[name] = arg.slice(eq + 1);
    else if (i + 1 < argv.length) env[name] = argv[++i];
    else throw new ConfigError(name, "flag has no value");
  }
  return env;
}

/** Empty counts as unset, so `PORT= npm start` or a blank line of an env file means the default. */
function read<T>(setting: Setting<T>, value: string | undefined): T {
  const given = setting.untrimmed ? value : value?.trim();
  // A copy, so that a caller changing its config's lists does not change the defaults.
  if (given === undefined || given === "") return structuredClone(setting.default);
  try {
    return setting.parse(given);
  } catch (err) {
    if (err instanceof BadValue) throw new ConfigError(setting.env, err.message);
    throw err;
  }
}

export function loadConfig(env: Env, argv: readonly string[] = []): Config {
  const all = { ...env, ...flagsToEnv(argv) };
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const [key, setting] of SETTING_LIST) config[key] = read(setting, all[setting.env]);
  for (const rule of CROSS_RULES) {
    if (rule.broken(config as Config)) throw new ConfigError(rule.env, rule.detail);
  }
  return config as Config;
}

/** What an empty environment gives: the one place other modules take a default from. */
export const DEFAULT_CONFIG: Config = Object.freeze(loadConfig({}));
