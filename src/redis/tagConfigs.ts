import os from 'os';
import type { RedisClient } from './client';
import { Keys } from '../core/keys';
import { TagConfig } from '../core/tags';
import { ConfigError, isRedisError, isRedisTrouble } from '../core/errors';
import { canonicalJson, parseTagConfig, tagConfigVersion } from '../core/tagConfig';
import { Logger, OutageLog, errorText } from '../core/logger';

/**
 * Which tag config the system runs, kept in Redis (keys.tagConfigs()): every recorded
 * config's canonical JSON under its version, and the active version. The first process to
 * start records its config as the active one; a process started later with another config
 * runs the active one instead (it says so in one line), so no process writes window state
 * that the active config would read differently. `profile tags plan` compares a file with
 * the active config. Running processes announce themselves (keys.tagConfigProcesses()) with
 * the version they run, so `profile status` and the dashboard show who runs what.
 */

/** A tag config whose window state is written, and the generation of pane keys it lives in (Keys.withGeneration). */
export interface WrittenTagConfig {
  version: string;
  generation: number;
  config: TagConfig;
}

/**
 * The config every process runs, and since when (epoch ms); `alsoWrite`: the configs whose
 * window state the realtime consumers also keep up to date (one being backfilled by
 * `profile tags apply`, and the previous one during its grace period), each in its own
 * generation.
 */
export interface ActiveTagConfig extends WrittenTagConfig {
  since: number;
  alsoWrite: WrittenTagConfig[];
}

/** Which configs are written where, without their documents (what a follower compares). */
interface TagConfigPointers {
  version: string;
  since: number;
  generation: number;
  alsoWrite: { version: string; generation: number }[];
}

/** `version@generation` of every config a process with `a` writes (the active one first): what its record shows. */
export function writtenVersions(a: Pick<TagConfigPointers, 'version' | 'generation' | 'alsoWrite'>): string[] {
  return [a, ...a.alsoWrite].map((w) => `${w.version}@${w.generation}`);
}

/** A running process as it announces itself. */
export interface ProcessRecord {
  /** host:pid */
  id: string;
  roles: string[];
  /** The tag config version it runs. */
  version: string;
  /** The tag file it was started with. */
  file: string;
  /** `version@generation` of every config whose window state it writes, the active one first (writtenVersions). */
  writes?: string[];
  started_at: number;
  /** Until when (epoch ms) it vouches for this record; renewed every ANNOUNCE_EVERY_MS. */
  until: number;
}

/** How often a process renews its record, and how long one record lasts (ms). */
export const ANNOUNCE_EVERY_MS = 5_000;
const ANNOUNCE_FOR_MS = 15_000;

/** The config recorded in Redis under `version` (ConfigError when there is none). */
export async function recordedTagConfig(redis: RedisClient, keys: Keys, version: string): Promise<TagConfig> {
  const text = await redis.hget(keys.tagConfigs(), `doc:${version}`);
  if (text === null) throw new ConfigError(`tag config ${version} is not recorded in Redis (${keys.tagConfigs()})`);
  return parseTagConfig(JSON.parse(text), `tag config ${version} (recorded in Redis)`);
}

/** The active version and since when (0: not recorded), or null when none is; reads no document. */
async function activeVersion(redis: RedisClient, keys: Keys): Promise<{ version: string; since: number } | null> {
  const [version, since] = await redis.hmget(keys.tagConfigs(), 'active', 'active_since');
  return version === null ? null : { version, since: Number(since ?? 0) };
}

/**
 * The active version with its generation, and the configs also written: the one pending
 * (being backfilled), and the previous one until `previous_until` (its grace period) when
 * it lives in another generation. Null when none is recorded. Reads no document.
 */
async function activePointers(redis: RedisClient, keys: Keys, now = Date.now()): Promise<TagConfigPointers | null> {
  const key = keys.tagConfigs();
  const [version, since, pending, previous, previousUntil] = await redis.hmget(key, 'active', 'active_since', 'pending', 'previous', 'previous_until');
  if (version === null) return null;
  const [g, gPending, gPrevious] = (await redis.hmget(key, `gen:${version}`, `gen:${pending ?? ''}`, `gen:${previous ?? ''}`)).map((x) => Number(x ?? 0));
  const alsoWrite: TagConfigPointers['alsoWrite'] = [];
  if (pending && pending !== version && gPending !== g) alsoWrite.push({ version: pending, generation: gPending });
  if (previous && previous !== version && gPrevious !== g && Number(previousUntil ?? 0) > now) alsoWrite.push({ version: previous, generation: gPrevious });
  return { version, since: Number(since ?? 0), generation: g, alsoWrite };
}

/** The pointers with their configs. */
async function loadPointers(redis: RedisClient, keys: Keys, p: TagConfigPointers): Promise<ActiveTagConfig> {
  const load = (version: string) => recordedTagConfig(redis, keys, version);
  return {
    ...p,
    config: await load(p.version),
    alsoWrite: await Promise.all(p.alsoWrite.map(async (w) => ({ ...w, config: await load(w.version) }))),
  };
}

/** The active tag config, or null when no process has recorded one yet. */
export async function activeTagConfig(redis: RedisClient, keys: Keys): Promise<ActiveTagConfig | null> {
  const p = await activePointers(redis, keys);
  return p && loadPointers(redis, keys, p);
}

/**
 * Records `config` (its canonical JSON under its version) and makes it the active one when
 * none is; answers the active config. A user that may not write the config hash (the
 * read-only `api` ACL user) only reads it: with none recorded yet, its own config is the
 * answer, and the first worker records it.
 */
export async function recordTagConfig(redis: RedisClient, keys: Keys, config: TagConfig): Promise<ActiveTagConfig> {
  const version = tagConfigVersion(config);
  const key = keys.tagConfigs();
  try {
    // The document before the version that names it, so `active` never names a missing one.
    await redis.hsetnx(key, `doc:${version}`, canonicalJson(config.document));
    if ((await redis.hsetnx(key, 'active', version)) === 1) await redis.hset(key, 'active_since', String(Date.now()));
  } catch (err) {
    // A user that may not write it, or a Redis out of memory (a process still starts, and
    // serves what it can): the active config is read, not recorded.
    if (!isRedisError(err, 'NOPERM') && !isRedisTrouble(err)) throw err;
  }
  const active = await activePointers(redis, keys);
  if (!active) return { version, since: Date.now(), config, generation: 0, alsoWrite: [] };
  const loaded = await loadPointers(redis, keys, active);
  return active.version === version ? { ...loaded, config } : loaded;
}

/**
 * A process's start: records its config, and when another config is active, says so in one
 * line and answers the active one (which the process then runs).
 */
export async function adoptActiveTagConfig(redis: RedisClient, keys: Keys, config: TagConfig, log: Logger): Promise<ActiveTagConfig> {
  const active = await recordTagConfig(redis, keys, config);
  const mine = tagConfigVersion(config);
  if (active.version !== mine) {
    log.warn(
      { file: config.source, version: mine, active: active.version, active_since: new Date(active.since).toISOString() },
      `tag config ${mine} (${config.source}) is not the active one: running the active config ${active.version}; to change it, \`profile tags plan\` then \`profile tags apply\` the file`,
    );
  }
  return active;
}

/**
 * A one-shot command's config: the active one when one is recorded (saying so in one line
 * when it is not `config`), else `config`; with the generation of pane keys its window
 * state lives in. Records nothing; a user that may not read the config hash runs `config`.
 */
export async function followActiveTagConfig(
  redis: RedisClient,
  keys: Keys,
  config: TagConfig,
  log: Logger,
): Promise<{ config: TagConfig; generation: number; written: string }> {
  const mine = { config, generation: 0, written: `${tagConfigVersion(config)}@0` };
  let active: ActiveTagConfig | null;
  try {
    active = await activeTagConfig(redis, keys);
  } catch (err) {
    if (isRedisError(err, 'NOPERM')) return mine;
    // The active version's document missing or unreadable (changed by hand): say so, and go
    // on with `config` rather than refuse to run (`profile status` must still answer).
    if (err instanceof ConfigError || err instanceof SyntaxError) {
      log.warn({ err: errorText(err) }, `cannot read the active tag config: using ${config.source}`);
      return mine;
    }
    throw err;
  }
  if (!active) return mine;
  const version = tagConfigVersion(config);
  if (active.version !== version) {
    log.warn(
      { file: config.source, version, active: active.version },
      `tag config ${version} (${config.source}) is not the active one: using the active config ${active.version}`,
    );
  }
  return { config: active.version === version ? config : active.config, generation: active.generation, written: writtenVersions(active).join(' ') };
}

/** The running processes (records not renewed in time are left out), by id. */
export async function runningProcesses(redis: RedisClient, keys: Keys): Promise<ProcessRecord[]> {
  const all = await redis.hgetall(keys.tagConfigProcesses());
  const now = Date.now();
  const out: ProcessRecord[] = [];
  for (const text of Object.values(all)) {
    try {
      const r = JSON.parse(text) as ProcessRecord;
      if (r.until > now) out.push(r);
    } catch {
      // not one of ours: skipped
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * Announces this process (its roles and the tag config version it runs) until the returned
 * stop() is called, renewing the record every ANNOUNCE_EVERY_MS; best effort (a failed
 * renewal is logged at debug and tried again).
 */
export function announceProcess(
  redis: RedisClient,
  keys: Keys,
  roles: string[],
  version: string,
  file: string,
  log: Logger,
  writes: string[] = [`${version}@0`],
): { setVersion(version: string, writes?: string[]): Promise<void>; stop(): Promise<void> } {
  const id = `${os.hostname()}:${process.pid}`;
  const key = keys.tagConfigProcesses();
  const startedAt = Date.now();
  const renew = async () => {
    const record: ProcessRecord = { id, roles, version, file, writes, started_at: startedAt, until: Date.now() + ANNOUNCE_FOR_MS };
    try {
      await redis.hset(key, id, JSON.stringify(record));
      await redis.pexpire(key, ANNOUNCE_FOR_MS * 4);
    } catch (err) {
      log.debug({ err: errorText(err) }, 'could not renew the process record');
    }
  };
  void renew();
  const timer = setInterval(() => void renew(), ANNOUNCE_EVERY_MS);
  timer.unref();
  return {
    async setVersion(v: string, w?: string[]) {
      version = v;
      writes = w ?? [`${v}@0`];
      await renew();
    },
    async stop() {
      clearInterval(timer);
      await redis.hdel(key, id).catch(() => undefined);
    },
  };
}

/** How often a running process checks which tag config is active (ms). */
export const TAG_CONFIG_POLL_MS = 1000;

/**
 * Follows the active tag config: every `everyMs` reads which configs are written where
 * (the active one and its generation, and those also written: see activePointers) and,
 * when that is not `current` (writtenVersions(...).join(' '); a bare version means that
 * version in generation 0 alone), loads the configs and awaits `onSwitch` with them (once
 * per change; a load or switch that fails is logged and tried again at the next check).
 * stop() waits for a switch in progress.
 */
export function watchActiveTagConfig(
  redis: RedisClient,
  keys: Keys,
  current: string,
  onSwitch: (active: ActiveTagConfig) => Promise<void> | void,
  log: Logger,
  everyMs = TAG_CONFIG_POLL_MS,
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  if (!current.includes('@')) current = `${current}@0`;
  // Once per outage (a lost connection is the connection's own line, not this one's).
  const outage = new OutageLog(log, 'cannot follow the active tag config', 'trying again every second');
  const follow = async () => {
    const pointers = await activePointers(redis, keys);
    if (stopped || !pointers) return;
    const seen = writtenVersions(pointers).join(' ');
    if (seen === current) return;
    const active = await loadPointers(redis, keys, pointers);
    if (stopped) return;
    await onSwitch(active);
    const from = current.split(' ')[0].split('@')[0];
    if (from !== active.version) log.info({ from, to: active.version, file: active.config.source }, `switched to tag config ${active.version}`);
    else
      log.info(
        { version: active.version, also_writing: writtenVersions(active).slice(1) },
        `tag config ${active.version}: now also writing ${writtenVersions(active).slice(1).join(', ') || 'nothing else'}`,
      );
    current = seen;
  };
  const check = async () => {
    try {
      await follow();
      outage.succeeded();
    } catch (err) {
      if (!isRedisTrouble(err)) outage.failed(err);
    }
  };
  const loop = () => {
    if (stopped) return;
    running = check().finally(() => {
      if (!stopped) timer = setTimeout(loop, everyMs).unref();
    });
  };
  timer = setTimeout(loop, everyMs).unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** What `profile status` and the dashboard show: the active version and who runs which. */
export interface TagConfigStatus {
  active: { version: string; since: number } | null;
  /** A config being backfilled by `profile tags apply` (or left so by one that was stopped: run it again to resume). */
  pending?: { version: string; since: number; generation: number } | null;
  processes: ProcessRecord[];
}

export async function tagConfigStatus(redis: RedisClient, keys: Keys): Promise<TagConfigStatus> {
  const [active, processes, [pending, since]] = await Promise.all([
    activeVersion(redis, keys),
    runningProcesses(redis, keys),
    redis.hmget(keys.tagConfigs(), 'pending', 'pending_since'),
  ]);
  const generation = pending ? Number((await redis.hget(keys.tagConfigs(), `gen:${pending}`)) ?? 0) : 0;
  return { active, pending: pending ? { version: pending, since: Number(since ?? 0), generation } : null, processes };
}

/**
 * Stops a pending backfill (`profile tags cancel`): the consumers stop writing its state at
 * their next check, and its keys expire. Answers the version it cancelled, or null.
 */
export async function cancelPendingTagConfig(redis: RedisClient, keys: Keys): Promise<string | null> {
  const pending = await redis.hget(keys.tagConfigs(), 'pending');
  if (pending) await redis.hdel(keys.tagConfigs(), 'pending', 'pending_since');
  return pending;
}
