import { createHash } from 'crypto';
import fs from 'fs';
import path from 'path';
import type { Redis, Cluster, ChainableCommander } from 'ioredis';
import { isRedisError } from '../core/errors';

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

/**
 * Scripts that only read (`#!lua flags=no-writes`) run with EVALSHA_RO: its keys are
 * read-only to ACLs, so a user with read-only key patterns (`%R~`) may run them, and
 * they may run on replicas.
 */
const READ_ONLY = new Set(['readProfile']);

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
  return Object.keys(SCRIPTS).map((name) => ({ name, sha: digest(name), lua: source(name) }));
}

type ScriptClient = Redis | Cluster;
type Caller = ScriptClient | ChainableCommander;

/**
 * Runs a script by SHA (EVALSHA) on a client or queues it on a pipeline. Never EVAL: a
 * Redis ACL user may be denied EVAL (ad-hoc scripts), and ioredis's defineCommand sends
 * EVAL first on every connection. Scripts are put into the cache with SCRIPT LOAD
 * (`loadScripts` below: on connect, on reconnect, and when a call answers NOSCRIPT);
 * a direct call that meets NOSCRIPT loads them and retries once, a pipeline's caller
 * (pipelineByNode) does the same for its failed items.
 */
export function callScript(target: Caller, name: keyof typeof SCRIPTS & string, args: (string | number)[]): Promise<unknown> {
  const numberOfKeys = SCRIPTS[name];
  const full = [digest(name), ...(numberOfKeys === undefined ? [] : [numberOfKeys]), ...args];
  const command = READ_ONLY.has(name) ? 'EVALSHA_RO' : 'EVALSHA';
  if ((target as { isPipeline?: boolean }).isPipeline) {
    (target as ChainableCommander).call(command, ...full);
    return Promise.resolve(undefined);
  }
  const client = target as ScriptClient;
  return client.call(command, ...full).catch(async (err: Error) => {
    if (!isRedisError(err, 'NOSCRIPT')) throw err;
    await loadScripts(client);
    return client.call(command, ...full);
  });
}

const shas = new Map<string, string>();
function digest(name: string): string {
  let sha = shas.get(name);
  if (sha === undefined) {
    sha = createHash('sha1').update(source(name)).digest('hex');
    shas.set(name, sha);
  }
  return sha;
}

/**
 * Puts every script into the script cache of each master (SCRIPT LOAD). A user that may
 * not load scripts (the ACL user `ingest` runs none) is skipped quietly.
 */
export async function loadScripts(client: ScriptClient): Promise<void> {
  const nodes = (client as Cluster).isCluster === true ? (client as Cluster).nodes('master') : [client as Redis];
  try {
    for (const node of nodes) await ensureScriptsOn(node);
  } catch (err) {
    if (!isRedisError(err, 'NOPERM')) throw err;
  }
}

/** Loads (SCRIPT LOAD) every script that one server's cache lacks (SCRIPT EXISTS). */
export async function ensureScriptsOn(node: Redis): Promise<void> {
  const scripts = scriptDigests();
  const exists = (await node.script('EXISTS', ...scripts.map((s) => s.sha))) as number[];
  for (const [i, s] of scripts.entries()) if (!exists[i]) await node.script('LOAD', s.lua);
}
