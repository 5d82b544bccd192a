import { createHash } from 'crypto';
import fs from 'fs';
import path from 'path';
import type { Redis, Cluster, ChainableCommander } from 'ioredis';
import { ConfigError, ScriptsNotLoadedError, isRedisError } from '../core/errors';

const INCLUDE = /^--@include (\w+)\s*$/gm;
const SHEBANG = /^#!lua[^\n]*\n/;

/**
 * Reads `src/lua/<name>.lua` and the names of the includes its `--@include helper` lines
 * ask for (`src/lua/includes/helper.lua`), in their order. Sources are fixed files: nothing
 * in a script is ever built from request data.
 */
function readScript(name: string): { body: string; includes: string[] } {
  const includes: string[] = [];
  const text = fs.readFileSync(path.join(__dirname, `${name}.lua`), 'utf8').replace(SHEBANG, '');
  const body = text.replace(INCLUDE, (_, helper: string) => {
    includes.push(helper);
    return '';
  });
  return { body, includes };
}

/** How a script is called: its number of keys (`'counted'`: passed per call), and whether it only reads. */
interface ScriptSpec {
  keys: number | 'counted';
  /**
   * Scripts that only read are registered with the flag `no-writes` and run with FCALL_RO:
   * their keys are read-only to ACLs, so a user with read-only key patterns (`%R~`) may run
   * them, and they may run on replicas.
   */
  readOnly: boolean;
}

/** Every script of the product, declared once: `src/lua/<name>.lua`. */
const SCRIPTS = {
  updateWindows: { keys: 'counted', readOnly: false },
  applyFolds: { keys: 'counted', readOnly: false },
  appendTriggers: { keys: 2, readOnly: false },
  readProfile: { keys: 'counted', readOnly: true },
  trimStream: { keys: 1, readOnly: false },
  casLock: { keys: 1, readOnly: false },
  switchTagConfig: { keys: 1, readOnly: false },
  startTagBackfill: { keys: 1, readOnly: false },
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

/**
 * readProfile.lua's reply: exists flag, then (for a known user) newest event time, flat
 * window tags, flat offline hash; -1 when the call named its plan by id alone and this
 * library load does not have it (send the call again with the plan: ReadPlan).
 */
export type ReadProfileReply = [exists: 0] | [exists: -1] | [exists: 1, lastEventAt: string | null, tags: unknown[], offline: string[]];

/**
 * The window plan of a read: its binary form (windowPlan) and its id. A read sends the id
 * alone (`withBinary` false) and the binary only when a server answers that it lacks it:
 * the 309-byte plan of the shipped config cost ~0.9 µs of Redis on every call.
 */
export interface ReadPlan {
  id: string;
  bin: Buffer;
  withBinary: boolean;
}

/** updateWindows.lua's reply: events added, then user id and outbox firings of each user whose triggers were evaluated. */
export type UpdateWindowsReply = [added: number, ...userOutboxes: (string | string[])[]];

/** One user's part of an updateWindows.lua call: its keys, and per plan type its events (3 values each: time, fingerprint, packed fields). */
export interface WindowUpdateUser {
  userId: string;
  realtimeKey: string;
  /** The event a trigger firing names. */
  lastEventId: string;
  /** With the user's triggers evaluated: the keys they need. */
  triggers?: { stateKey: string; outboxKey: string; offlineKey: string };
  types: { planIndex: number; panesKey: string; indexKey: string; legacyKey: string; legacyValuesKey: string; events: readonly ScriptArg[] }[];
}

/** The tags a read evaluates (all when not given): window tag names, and offline hash fields. */
export interface TagSelection {
  window: readonly string[];
  offline: readonly string[];
}

/** The keys a profile read touches. */
export interface ProfileKeys {
  types: { panesKey: string; indexKey: string }[];
  realtimeKey: string;
  offlineKey: string;
}

/** One user's window state as the consumer folded it (applyFolds.lua's record, with its keys). */
export interface FoldedUser {
  realtimeKey: string;
  /** The newest event time of the user's changed types before the call; null when one had none. */
  newestBefore: number | null;
  types: {
    panesKey: string;
    indexKey: string;
    legacyKey: string;
    /** The write counter V as read ('' for a new type). */
    version: string;
    name: string;
    /** The type's newest event time after the call, or null when the realtime hash need not change for it. */
    newest: number | null;
    writes: readonly ScriptArg[];
    drops: readonly string[];
    members: readonly ScriptArg[];
    ttl?: 'GT' | 'SET';
    expireInMs: number;
    /** A prune (the consumer's transaction only; applyFolds.lua never gets one): panes to delete, time index ranges to remove. */
    prune?: { drops: readonly string[]; ranges: readonly (readonly [string, string])[] };
  }[];
}

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
   * Folds a consumer batch of many users into their windows; lays out KEYS and ARGV as
   * updateWindows.lua's header lists (each user's record names the KEYS index of its keys).
   */
  updateWindows(users: readonly WindowUpdateUser[], now: number, plan: Buffer, triggerPlanJson: string): ScriptCall<UpdateWindowsReply> {
    const keys: string[] = [];
    const records: ScriptArg[] = [];
    for (const u of users) {
      records.push(keys.length + 1, u.triggers ? 1 : 0, u.lastEventId, u.userId, u.types.length);
      keys.push(u.realtimeKey);
      if (u.triggers) keys.push(u.triggers.stateKey, u.triggers.outboxKey, u.triggers.offlineKey);
      for (const t of u.types) {
        records.push(t.planIndex, keys.length + 1, t.events.length / 3, ...t.events);
        keys.push(t.panesKey, t.indexKey, t.legacyKey, t.legacyValuesKey);
      }
    }
    return call('updateWindows', keys, [now, plan, triggerPlanJson, ...records]);
  },
  /**
   * Writes users' window state folded by the consumer, each only if its types' write
   * counters are still what it read; the reply lists the 1-based positions of the users
   * not written. Lays out KEYS and ARGV as applyFolds.lua's header lists.
   */
  applyFolds(users: readonly FoldedUser[], now: number, longestMs: number): ScriptCall<number[]> {
    const keys: string[] = [];
    const args: ScriptArg[] = [now, longestMs];
    for (const u of users) {
      keys.push(u.realtimeKey);
      args.push(keys.length, u.newestBefore ?? '', u.types.length);
      for (const t of u.types) {
        keys.push(t.panesKey, t.indexKey, t.legacyKey);
        args.push(keys.length - 2, t.version, t.name, t.newest ?? '');
        args.push(t.writes.length, ...t.writes, t.drops.length, ...t.drops, t.members.length, ...t.members, t.ttl ?? '', t.expireInMs);
      }
    }
    return call('applyFolds', keys, args);
  },
  /** Appends firings (id, then field/value pairs) to a partition's trigger stream once each; trims by age. */
  appendTriggers(stream: string, seen: string, now: number, retentionMs: number, firings: readonly { id: string; fields: string[] }[]): ScriptCall<number> {
    return call('appendTriggers', [stream, seen], [now, retentionMs, ...firings.flatMap((f) => [f.id, f.fields.length, ...f.fields])]);
  },
  /** A user's fused profile: the pane hash and time index of each plan type (in plan order), then its realtime and offline hashes. */
  readProfile(user: ProfileKeys, now: number, plan: ReadPlan, select?: TagSelection): ScriptCall<ReadProfileReply> {
    const keys = user.types.flatMap((t) => [t.panesKey, t.indexKey]);
    keys.push(user.realtimeKey, user.offlineKey);
    const selected = [select ? select.window.join(',') : '*', select ? select.offline.join('\x1f') : '*'];
    return call('readProfile', keys, [now, plan.withBinary ? plan.bin : '', ...selected, plan.id]);
  },
  /** Trims a partition below what every group in `groups` finished; -1 while one is missing. */
  trimStream(stream: string, groups: readonly string[]): ScriptCall<number> {
    return call('trimStream', [stream], [...groups]);
  },
  /** Renews (ttlMs > 0) or releases (0) a lock only for its owner; 1 when `owner` held it. */
  casLock(lockKey: string, owner: string, ttlMs: number): ScriptCall<0 | 1> {
    return call('casLock', [lockKey], [owner, ttlMs]);
  },
  /**
   * Makes `version` the active tag config if `expected` ('' for none) still is (and, with
   * `pending`, that version is still the one pending); its state in pane keys of
   * `generation` (undefined: the active one's); the old config's state written for
   * `graceMs` more. 1 switched, 0 not the expected, -1 document missing.
   */
  switchTagConfig(
    configKey: string,
    expected: string,
    version: string,
    now: number,
    opts: { graceMs?: number; pending?: string; generation?: number } = {},
  ): ScriptCall<1 | 0 | -1> {
    return call('switchTagConfig', [configKey], [expected, version, now, opts.graceMs ?? 0, opts.pending ?? '', opts.generation ?? '']);
  },
  /** Makes `version` the pending config (being backfilled) if `expected` is still active: its generation (≥ 1), 0 not the expected, -1 document missing. */
  startTagBackfill(configKey: string, expected: string, version: string, now: number): ScriptCall<number> {
    return call('startTagBackfill', [configKey], [expected, version, now]);
  },
};

/**
 * The product's scripts as one Redis Functions library (FUNCTION LOAD): every include once
 * at the library's top level, so its helpers are defined once per load rather than on
 * every call (that cost ~14 µs a call as EVALSHA), and state a script keeps between calls
 * (the decoded window plan, includes/plan.lua) lives as long as the library; then each
 * script registered as a function taking KEYS and ARGV as EVALSHA gave them. The name
 * carries a digest of the source, so processes of two versions each run their own.
 */
export interface ScriptLibrary {
  /** `profilestream_<digest>` */
  name: string;
  source: string;
  /** Each script's function name (`ps_<digest>_<script>`). */
  functions: Record<ScriptName, string>;
}

/** The prefix of every library name the product loads (older versions' too). */
export const LIBRARY_PREFIX = 'profilestream_';

let built: ScriptLibrary | undefined;

/** The library, built once per process from the files under src/lua. */
export function scriptLibrary(): ScriptLibrary {
  if (built) return built;
  const names = Object.keys(SCRIPTS) as ScriptName[];
  const scripts = names.map((name) => ({ name, ...readScript(name) }));
  // Every include once, in an order that keeps each script's own (a helper may use those before it).
  const includes = [...new Set(scripts.flatMap((s) => s.includes))];
  const helpers = includes.map((h) => fs.readFileSync(path.join(__dirname, 'includes', `${h}.lua`), 'utf8')).join('\n');
  const digest = createHash('sha1')
    .update(helpers)
    .update(scripts.map((s) => `${s.name}\0${String(SCRIPTS[s.name].readOnly)}\0${s.body}`).join('\0'))
    .digest('hex')
    .slice(0, 12);
  const functions = Object.fromEntries(names.map((n) => [n, `ps_${digest}_${n}`])) as Record<ScriptName, string>;
  const registrations = scripts.map((s) => {
    const flags = SCRIPTS[s.name].readOnly ? "{ 'no-writes' }" : '{}';
    return `redis.register_function{ function_name = '${functions[s.name]}', flags = ${flags}, callback = function(KEYS, ARGV)\n${s.body}\nend }`;
  });
  built = { name: `${LIBRARY_PREFIX}${digest}`, source: [`#!lua name=${LIBRARY_PREFIX}${digest}`, helpers, ...registrations].join('\n'), functions };
  return built;
}

type ScriptClient = Redis | Cluster;

function command(c: ScriptCall<unknown>): [string, ...ScriptArg[]] {
  const spec: ScriptSpec = SCRIPTS[c.script];
  return [spec.readOnly ? 'FCALL_RO' : 'FCALL', scriptLibrary().functions[c.script], c.keys.length, ...c.keys, ...c.args];
}

/**
 * True when `err` says a server lacks the library (a server that was never given it, or
 * whose functions were flushed): the one error a script call answers by loading it.
 */
export function isScriptMissing(err: unknown): boolean {
  return err instanceof Error && /Function not found/i.test(err.message);
}

/**
 * Runs a script (FCALL, or FCALL_RO for read-only ones). A server that lacks the library
 * (`isScriptMissing`) is given it (`loadScripts`) and the call is sent once more.
 */
export function runScript<Reply>(client: ScriptClient, c: ScriptCall<Reply>): Promise<Reply> {
  const [cmd, ...args] = command(c);
  return client.call(cmd, ...args).catch(async (err: Error) => {
    if (!isScriptMissing(err)) throw err;
    await loadScripts(client);
    return client.call(cmd, ...args).catch((again: unknown) => {
      throw stillMissing(again);
    });
  }) as Promise<Reply>;
}

/**
 * Queues a script call on a pipeline; its reply comes with the pipeline's. Send such
 * pipelines through `sendLoadingScripts`, which handles a server that lacks the library.
 */
export function queueScript(pipeline: ChainableCommander, c: ScriptCall<unknown>): void {
  const [cmd, ...args] = command(c);
  pipeline.call(cmd, ...args);
}

/**
 * Sends `items` with `send` (one [error, reply] per item, as pipelineByNode answers); the
 * items whose reply says a server lacks the library are sent once more after loading it
 * (every script call of the product may be repeated: each is idempotent). With
 * runScript, the one place that handles a missing library.
 */
export async function sendLoadingScripts<T>(
  client: ScriptClient,
  items: readonly T[],
  send: (items: readonly T[]) => Promise<[Error | null, unknown][]>,
): Promise<[Error | null, unknown][]> {
  const out = await send(items);
  const missing = out.map(([err], i) => (isScriptMissing(err) ? i : -1)).filter((i) => i >= 0);
  if (missing.length === 0) return out;
  await loadScripts(client);
  const again = await send(missing.map((i) => items[i]));
  missing.forEach((itemIndex, j) => (out[itemIndex] = again[j][0] ? [stillMissing(again[j][0]) as Error, null] : again[j]));
  return out;
}

function mastersOf(client: ScriptClient): Redis[] {
  return (client as Cluster).isCluster === true ? (client as Cluster).nodes('master') : [client as Redis];
}

/**
 * Loads the library on each master that lacks it (replicas get it from their master;
 * persistence keeps it through a restart). On connect (`connecting`), also checks that a
 * library of this name holds this version's code, and deletes the libraries of other
 * versions of the product (a process of such a version still running loads its own again
 * on its next call). A user that may not load or delete functions (only the ACL user
 * `worker` may) is skipped quietly: its calls say so if the library is missing.
 */
export async function loadScripts(client: ScriptClient, opts: { connecting?: boolean } = {}): Promise<void> {
  for (const node of mastersOf(client)) {
    try {
      await ensureScriptsOn(node, { verify: opts.connecting });
      if (opts.connecting) await dropOlderLibraries(node);
    } catch (err) {
      if (!isRedisError(err, 'NOPERM')) throw err;
    }
  }
}

type LibraryEntry = unknown[];
const field = (entry: LibraryEntry, name: string): unknown => entry[entry.indexOf(name) + 1];

/**
 * Loads the library on one server unless it has it (FUNCTION LIST, then FUNCTION LOAD).
 * With `verify`, a library of that name must hold this version's code: its name carries a
 * digest of the code, so anything else was loaded by someone else, and is refused.
 */
export async function ensureScriptsOn(node: Redis, opts: { verify?: boolean } = {}): Promise<void> {
  const lib = scriptLibrary();
  const listed = (await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', lib.name, ...(opts.verify ? ['WITHCODE'] : []))) as LibraryEntry[];
  if (listed.length > 0) {
    if (opts.verify && field(listed[0], 'library_code') !== lib.source) {
      throw new ConfigError(
        `Redis at ${nodeName(node)} holds a function library named ${lib.name} that is not this version's code: delete it (FUNCTION DELETE ${lib.name}) and start again`,
      );
    }
    return;
  }
  try {
    await node.call('FUNCTION', 'LOAD', lib.source);
  } catch (err) {
    // Another process loaded it in between.
    if (!(err instanceof Error && /already exists/.test(err.message))) throw err;
  }
}

const nodeName = (node: Redis) => `${node.options.host ?? '127.0.0.1'}:${node.options.port ?? 6379}`;

async function dropOlderLibraries(node: Redis): Promise<void> {
  const listed = (await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', `${LIBRARY_PREFIX}*`)) as LibraryEntry[];
  for (const entry of listed) {
    const name = String(field(entry, 'library_name'));
    if (name.startsWith(LIBRARY_PREFIX) && name !== scriptLibrary().name) {
      await node.call('FUNCTION', 'DELETE', name).catch((err: unknown) => {
        if (!(err instanceof Error && /not found|no such/i.test(err.message))) throw err;
      });
    }
  }
}

/**
 * The error of a call that met a missing library after `loadScripts` ran: the library is
 * still missing, so this user may not load it.
 */
function stillMissing(err: unknown): unknown {
  if (!isScriptMissing(err)) return err;
  return new ScriptsNotLoadedError(
    `the product's Redis functions (library ${scriptLibrary().name}) are not loaded, and this Redis user may not load them: start a realtime consumer (the worker user loads them) or load them as an administrator (${(err as Error).message})`,
  );
}
