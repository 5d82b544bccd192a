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

/** The config every process runs, and since when (epoch ms). */
export interface ActiveTagConfig {
  version: string;
  since: number;
  config: TagConfig;
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

/** The active tag config, or null when no process has recorded one yet. */
export async function activeTagConfig(redis: RedisClient, keys: Keys): Promise<ActiveTagConfig | null> {
  const active = await activeVersion(redis, keys);
  return active && { ...active, config: await recordedTagConfig(redis, keys, active.version) };
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
  const active = await activeVersion(redis, keys);
  if (!active || active.version === version) return { version, since: active?.since || Date.now(), config };
  return { ...active, config: await recordedTagConfig(redis, keys, active.version) };
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
 * when it is not `config`), else `config`. Records nothing; a user that may not read the
 * config hash runs `config`.
 */
export async function followActiveTagConfig(redis: RedisClient, keys: Keys, config: TagConfig, log: Logger): Promise<TagConfig> {
  let active: ActiveTagConfig | null;
  try {
    active = await activeTagConfig(redis, keys);
  } catch (err) {
    if (isRedisError(err, 'NOPERM')) return config;
    // The active version's document missing or unreadable (changed by hand): say so, and go
    // on with `config` rather than refuse to run (`profile status` must still answer).
    if (err instanceof ConfigError || err instanceof SyntaxError) {
      log.warn({ err: errorText(err) }, `cannot read the active tag config: using ${config.source}`);
      return config;
    }
    throw err;
  }
  const mine = tagConfigVersion(config);
  if (!active || active.version === mine) return config;
  log.warn(
    { file: config.source, version: mine, active: active.version },
    `tag config ${mine} (${config.source}) is not the active one: using the active config ${active.version}`,
  );
  return active.config;
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
): { setVersion(version: string): Promise<void>; stop(): Promise<void> } {
  const id = `${os.hostname()}:${process.pid}`;
  const key = keys.tagConfigProcesses();
  const startedAt = Date.now();
  const renew = async () => {
    const record: ProcessRecord = { id, roles, version, file, started_at: startedAt, until: Date.now() + ANNOUNCE_FOR_MS };
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
    async setVersion(v: string) {
      version = v;
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
 * Follows the active tag config: every `everyMs` reads the active version and, when it is
 * not `current`, loads that config and awaits `onSwitch` with it (once per change; a load
 * or switch that fails is logged and tried again at the next check). stop() waits for a
 * switch in progress.
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
  // Once per outage (a lost connection is the connection's own line, not this one's).
  const outage = new OutageLog(log, 'cannot follow the active tag config', 'trying again every second');
  const follow = async () => {
    const active = await activeVersion(redis, keys);
    if (stopped || !active || active.version === current) return;
    const { version } = active;
    const config = await recordedTagConfig(redis, keys, version);
    if (stopped) return;
    await onSwitch({ ...active, config });
    log.info({ from: current, to: version, file: config.source }, `switched to tag config ${version}`);
    current = version;
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
  processes: ProcessRecord[];
}

export async function tagConfigStatus(redis: RedisClient, keys: Keys): Promise<TagConfigStatus> {
  const [active, processes] = await Promise.all([activeVersion(redis, keys), runningProcesses(redis, keys)]);
  return { active, processes };
}
