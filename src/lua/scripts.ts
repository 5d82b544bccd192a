import { createHash } from 'crypto';
import fs from 'fs';
import path from 'path';
import type { Redis, Cluster, ChainableCommander } from 'ioredis';

const INCLUDE = /^--@include (\w+)\s*$/gm;

/**
 * Reads `src/lua/<name>.lua` and inlines each `--@include helper` line with
 * `src/lua/includes/helper.lua`. Sources are fixed files: nothing in a script is ever
 * built from request data.
 */
export function loadLua(name: string): string {
  const text = fs.readFileSync(path.join(__dirname, `${name}.lua`), 'utf8');
  return text.replace(INCLUDE, (_, helper: string) =>
    fs.readFileSync(path.join(__dirname, 'includes', `${helper}.lua`), 'utf8'),
  );
}

/** The product's scripts, with their key counts (undefined = passed per call). */
const SCRIPTS: Record<string, number | undefined> = {
  updateWindows: 3,
  readProfile: undefined,
  trimStream: 1,
  casLock: 1,
};

const sources = new Map<string, string>();
function source(name: string): string {
  let lua = sources.get(name);
  if (lua === undefined) {
    lua = loadLua(name);
    sources.set(name, lua);
  }
  return lua;
}

/** Every script's name, SHA1 (what EVALSHA sends) and source. */
export function scriptDigests(): { name: string; sha: string; lua: string }[] {
  return Object.keys(SCRIPTS).map((name) => {
    const lua = source(name);
    return { name, sha: createHash('sha1').update(lua).digest('hex'), lua };
  });
}

type ScriptClient = Redis | Cluster;
const defined = new WeakSet<object>();

/**
 * Defines every script as a command on `client` (ioredis sends EVALSHA and falls back to
 * EVAL once per connection on NOSCRIPT). Idempotent per client.
 */
export function defineScripts(client: ScriptClient): void {
  if (defined.has(client)) return;
  for (const [name, numberOfKeys] of Object.entries(SCRIPTS)) {
    client.defineCommand(name, numberOfKeys === undefined ? { lua: source(name) } : { numberOfKeys, lua: source(name) });
  }
  defined.add(client);
}

type Caller = ScriptClient | ChainableCommander;
type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** Calls a defined script on a client or a pipeline. */
export function callScript(target: Caller, name: keyof typeof SCRIPTS & string, args: (string | number)[]): Promise<unknown> {
  const fn = (target as unknown as Record<string, ScriptFn>)[name];
  if (typeof fn !== 'function') throw new Error(`script ${name} is not defined on this client: call defineScripts first`);
  return fn.apply(target, args);
}
