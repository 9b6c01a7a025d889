/**
 * The command line before the configuration: `--help` (usage and every setting of settings.ts),
 * `--version` (this server's version and the protocol versions it speaks), and flags that name no
 * setting. Runtime-neutral, so every entry (server.ts, the binary, another runtime's) answers alike.
 */
import { basename, isAbsolute } from "node:path";
import packageJson from "../package.json" with { type: "json" };
import { PROTOCOL_VERSION, v2 } from "../protocol";
import { SETTING_LIST } from "./settings";

/** What the command line asks for when it is not "serve": text to print and the exit code. */
export interface CliAnswer {
  text: string;
  /** 0: printed on stdout; else printed on stderr. */
  exitCode: number;
}

const HELP_FLAGS = new Set(["-h", "--help"]);
const VERSION_FLAGS = new Set(["-v", "-V", "--version"]);
const WIDTH = 100;

/**
 * The answer to `argv` (the arguments after the program) when it is not a configuration to serve
 * with: help, version, or a usage error for a flag no setting has. `undefined`: start the server.
 * `program` is how the user started it (`bun server.ts`, `chat-server`), for the usage lines.
 */
export function cliAnswer(argv: readonly string[], program: string): CliAnswer | undefined {
  if (argv.some((arg) => HELP_FLAGS.has(arg))) return { text: helpText(program), exitCode: 0 };
  if (argv.some((arg) => VERSION_FLAGS.has(arg))) return { text: versionText(), exitCode: 0 };
  const known = new Set(SETTING_LIST.map(([, s]) => s.env));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) {
      return usageError(program, `unexpected argument "${arg}"`);
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!known.has(name.toUpperCase().replaceAll("-", "_"))) {
      return usageError(program, `unknown flag --${name}`);
    }
    if (eq === -1) i++; // its value
  }
  return undefined;
}

/**
 * For an entry's `import.meta.main`, before anything starts: prints the answer to `argv` and exits
 * when there is one (0 after help or version, 2 after a usage error); else returns, and the server
 * starts. `program` is shown in the usage lines; a path (the binary's) by its base name.
 */
export function answerCommandLine(argv: readonly string[], program: string): void {
  const answer = cliAnswer(argv, isAbsolute(program) ? basename(program) : program);
  if (answer === undefined) return;
  if (answer.exitCode === 0) console.log(answer.text);
  else console.error(answer.text);
  process.exit(answer.exitCode);
}

function usageError(program: string, problem: string): CliAnswer {
  return {
    text: `${problem}\nusage: ${program} [--setting value]...   (${program} --help lists them)`,
    exitCode: 2,
  };
}

/** `bun-chat 0.1.0`, the protocol versions, and the runtime. */
export function versionText(): string {
  const versions: Record<string, string | undefined> = process.versions;
  const name = ["bun", "deno"].find((runtime) => versions[runtime] !== undefined) ?? "node";
  const runtime = `${name} ${versions[name]}`;
  return [
    `${packageJson.name} ${packageJson.version}`,
    `protocols: ${PROTOCOL_VERSION}, ${v2.PROTOCOL_VERSION_V2}`,
    `runtime: ${runtime}`,
  ].join("\n");
}

/** Usage, then every setting: its variable and flag, its default, and what it means (from settings.ts). */
export function helpText(program: string): string {
  const lines = [
    `${packageJson.name} ${packageJson.version}: ${packageJson.description}`,
    `Speaks the chat protocol v${PROTOCOL_VERSION} and v${v2.PROTOCOL_VERSION_V2} on /ws, serves the chat page at /.`,
    "",
    "Usage:",
    `  ${program} [--setting value]...   start the server`,
    `  ${program} --help                 this text`,
    `  ${program} --version              version and protocol versions`,
    "",
    "Every setting is an environment variable, or a flag of the same name (PORT=8080, --port 8080,",
    "--db-path=chat.db); a flag wins over the variable, and an empty value means the default. The",
    "server prints `listening on http://HOST:PORT` once it accepts connections; SIGINT or SIGTERM",
    "stores what is pending and closes every socket with 1001.",
    "",
    "Settings (variable, flag, default; then what it means):",
  ];
  for (const [, setting] of SETTING_LIST) {
    const flag = `--${setting.env.toLowerCase().replaceAll("_", "-")}`;
    const shown = plain(setting.shown ?? setting.format(setting.default));
    lines.push("", `  ${setting.env}  ${flag}  (${shown.startsWith("unset") ? shown : `default: ${shown}`})`);
    lines.push(...wrap(plain(setting.meaning), WIDTH - 6).map((line) => `      ${line}`));
  }
  return lines.join("\n");
}

/** The Markdown of settings.ts as terminal text: no backquotes. */
function plain(markdown: string): string {
  return markdown.replaceAll("`", "");
}

/** Words into lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}
