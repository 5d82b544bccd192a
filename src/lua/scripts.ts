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
  return text.replace(INCLUDE, (_, helper: string) => fs.readFileSync(path.join(__dirname, 'includes', `${helper}.lua`), 'utf8'));
}

/** How a script is called: its number of keys (`'counted'`: passed per call), and whether it only reads. */
interface ScriptSpec {
  keys: number | 'counted';
  /**
   * Scripts that only read (`#!lua flags=no-writes`) run with EVALSHA_RO: their keys are
   * read-only to ACLs, so a user with read-only key patterns (`%R~`) may run them, and
   * they may run on replicas.
   */
  readOnly: boolean;
}

/** Every script of the product, declared once: `src/lua/<name>.lua`. */
const SCRIPTS = {
  updateWindows: { keys: 'counted', readOnly: false },
  appendTriggers: { keys: 2, readOnly: false },
  readProfile: { keys: 'counted', readOnly: true },
  trimStream: { keys: 1, readOnly: false },
  casLock: { keys: 1, readOnly: false },
} as const satisfies Record<string, ScriptSpec>;

/** A script's name: a key of the table, so a misspelt one does not compile. */
export type ScriptName = keyof typeof SCRIPTS;

/**
 * One call of one script: its KEYS and ARGV, built by a constructor of `Scripts` (which
 * knows each script's inputs) and run with `runScript` or queued with `queueScript`.
 * `Reply` is the script's reply type.
 */
export interface ScriptCall<Reply> {
  readonly script: ScriptName;
  readonly keys: readonly string[];
  readonly args: readonly ScriptArg[];
  /** Type only: what the script answers. */
  readonly reply?: Reply;
}

/** readProfile.lua's reply: exists flag, then (for a known user) newest event time, flat window tags, flat offline hash. */
export type ReadProfileReply = [exists: 0] | [exists: 1, lastEventAt: string | null, tags: unknown[], offline: string[]];

/** updateWindows.lua's reply: events added, then user id and outbox firings of each user whose triggers were evaluated. */
export type UpdateWindowsReply = [added: number, ...userOutboxes: (string | string[])[]];

/** A script argument: text, a number, or bytes (fingerprints). */
export type ScriptArg = string | number | Buffer;

const call = <Reply>(script: ScriptName, keys: string[], args: ScriptArg[]): ScriptCall<Reply> => {
  const expected = SCRIPTS[script].keys;
  if (expected !== 'counted' && keys.length !== expected) throw new Error(`${script} takes ${expected} keys, got ${keys.length}`);
  return { script, keys, args };
};

/**
 * The typed constructors of every script call (BullMQ's `Scripts` class is the model):
 * each builds its script's KEYS and ARGV in one place, in the order its Lua header lists.
 */
export const Scripts = {
  /**
   * Folds a consumer batch of many users into their windows (KEYS and ARGV as
   * WindowWriter.update lays them out, the order updateWindows.lua's header lists).
   */
  updateWindows(keys: string[], now: number, plan: Buffer, triggerPlanJson: string, records: readonly ScriptArg[]): ScriptCall<UpdateWindowsReply> {
    return call('updateWindows', keys, [now, plan, triggerPlanJson, ...records]);
  },
  /** Appends firings (id, then field/value pairs) to a partition's trigger stream once each; trims by age. */
  appendTriggers(stream: string, seen: string, now: number, retentionMs: number, firings: readonly { id: string; fields: string[] }[]): ScriptCall<number> {
    return call('appendTriggers', [stream, seen], [now, retentionMs, ...firings.flatMap((f) => [f.id, f.fields.length, ...f.fields])]);
  },
  /** A user's fused profile: `keys` are the pane hash and time index of each plan type, then the realtime and offline hashes. */
  readProfile(keys: string[], now: number, plan: Buffer): ScriptCall<ReadProfileReply> {
    return call('readProfile', keys, [now, plan]);
  },
  /** Trims a partition below what every group in `groups` finished; -1 while one is missing. */
  trimStream(stream: string, groups: readonly string[]): ScriptCall<number> {
    return call('trimStream', [stream], [...groups]);
  },
  /** Renews (ttlMs > 0) or releases (0) a lock only for its owner; 1 when `owner` held it. */
  casLock(lockKey: string, owner: string, ttlMs: number): ScriptCall<0 | 1> {
    return call('casLock', [lockKey], [owner, ttlMs]);
  },
};

const sources = new Map<ScriptName, string>();
function source(name: ScriptName): string {
  let lua = sources.get(name);
  if (lua === undefined) {
    lua = loadLua(name);
    sources.set(name, lua);
  }
  return lua;
}

/** Every script's name, SHA1 (what EVALSHA sends) and source. */
export function scriptDigests(): { name: string; sha: string; lua: string }[] {
  return (Object.keys(SCRIPTS) as ScriptName[]).map((name) => ({ name, sha: digest(name), lua: source(name) }));
}

type ScriptClient = Redis | Cluster;

function command(c: ScriptCall<unknown>): [string, ...ScriptArg[]] {
  const spec: ScriptSpec = SCRIPTS[c.script];
  const numberOfKeys = c.keys.length;
  return [spec.readOnly ? 'EVALSHA_RO' : 'EVALSHA', digest(c.script), numberOfKeys, ...c.keys, ...c.args];
}

/**
 * Runs a script by SHA (EVALSHA). Never EVAL: a Redis ACL user may be denied EVAL (ad-hoc
 * scripts), and ioredis's defineCommand sends EVAL first on every connection. Scripts are
 * put into the cache with SCRIPT LOAD (`loadScripts` below: on connect, on reconnect, and
 * when a call answers NOSCRIPT); a call that meets NOSCRIPT loads them and retries once.
 */
export function runScript<Reply>(client: ScriptClient, c: ScriptCall<Reply>): Promise<Reply> {
  const [cmd, ...args] = command(c);
  return client.call(cmd, ...args).catch(async (err: Error) => {
    if (!isRedisError(err, 'NOSCRIPT')) throw err;
    await loadScripts(client);
    return client.call(cmd, ...args);
  }) as Promise<Reply>;
}

/**
 * Queues a script call on a pipeline; its reply comes with the pipeline's. The pipeline's
 * sender (pipelineByNode) loads the scripts and resends the items that met NOSCRIPT.
 */
export function queueScript(pipeline: ChainableCommander, c: ScriptCall<unknown>): void {
  const [cmd, ...args] = command(c);
  pipeline.call(cmd, ...args);
}

const shas = new Map<string, string>();
function digest(name: ScriptName): string {
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
