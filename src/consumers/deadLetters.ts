import { ConfigError } from '../core/errors';
import type { RedisClient } from '../redis/client';
import { Keys } from '../core/keys';
import { errorText } from '../core/logger';

/** One dead letter: an entry some group could not process, with why. */
export interface DeadLetter {
  /** Id in the dead-letter stream. */
  dead_id: string;
  stream: string;
  /** Id of the original entry in its partition. */
  id: string;
  group: string;
  consumer: string;
  deliveries: number;
  error: string;
  /** The original entry's field/value list. */
  fields: string[];
}

function parse(id: string, flat: string[]): DeadLetter {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]] = flat[i + 1];
  let fields: string[] = [];
  try {
    const parsed = JSON.parse(f.fields ?? '[]') as unknown;
    if (Array.isArray(parsed) && parsed.every((x) => typeof x === 'string')) fields = parsed;
  } catch {
    // left empty: such a letter cannot be replayed
  }
  return {
    dead_id: id,
    stream: f.stream ?? '',
    id: f.id ?? '',
    group: f.group ?? '',
    consumer: f.consumer ?? '',
    deliveries: Number(f.deliveries ?? 1),
    error: f.error ?? '',
    fields,
  };
}

/** The oldest `count` dead letters. */
export async function listDeadLetters(redis: RedisClient, keys: Keys, count = 100): Promise<DeadLetter[]> {
  const entries = await redis.xrange(keys.deadLetters(), '-', '+', 'COUNT', count);
  return entries.map(([id, flat]) => parse(id, flat));
}

/**
 * Re-injects dead letters (all, or those with the given dead ids) into the partition they
 * came from, then deletes them from the dead-letter stream. Both groups see them again;
 * every effect is idempotent by event id, so a group that had processed one is unaffected.
 * Letters naming a stream that is not one of the partitions are left in place.
 */
export async function replayDeadLetters(
  redis: RedisClient,
  keys: Keys,
  partitions: number,
  ids?: string[],
): Promise<{ replayed: number; skipped: string[]; missing: string[] }> {
  const streams = new Set(keys.streams(partitions));
  const bad = ids?.find((id) => !/^\d+(-\d+)?$/.test(id));
  if (bad !== undefined) throw new ConfigError(`--id ${bad}: a dead id is a stream id such as 1795687489291-0 (profile dead list shows them)`);
  const found = ids ? await Promise.all(ids.map((id) => redis.xrange(keys.deadLetters(), id, id))) : [await redis.xrange(keys.deadLetters(), '-', '+')];
  const missing = ids ? ids.filter((_, i) => found[i].length === 0) : [];
  const letters = found.flat();
  let replayed = 0;
  const skipped: string[] = [];
  for (const [deadId, flat] of letters) {
    const letter = parse(deadId, flat);
    if (!streams.has(letter.stream) || letter.fields.length === 0 || letter.fields.length % 2 !== 0) {
      skipped.push(deadId);
      continue;
    }
    await redis.xadd(letter.stream, '*', ...letter.fields);
    await redis.xdel(keys.deadLetters(), deadId);
    replayed++;
  }
  return { replayed, skipped, missing };
}

/** Deletes every dead letter; returns how many there were. */
export async function purgeDeadLetters(redis: RedisClient, keys: Keys): Promise<number> {
  const [[, n]] = (await redis.multi().xlen(keys.deadLetters()).del(keys.deadLetters()).exec()) as [[null, number], [null, number]];
  return n;
}

/**
 * Copies an unprocessable entry to the dead-letter stream (the caller acks it afterwards):
 * its partition and id, the group and consumer that gave up, the deliveries, why, and its fields.
 */
export async function writeDeadLetter(redis: RedisClient, keys: Keys, letter: Omit<DeadLetter, 'dead_id'>): Promise<void> {
  await redis.xadd(
    keys.deadLetters(),
    '*',
    'stream',
    letter.stream,
    'id',
    letter.id,
    'group',
    letter.group,
    'consumer',
    letter.consumer,
    'deliveries',
    String(letter.deliveries),
    'error',
    letter.error,
    'fields',
    JSON.stringify(letter.fields),
  );
}

/**
 * Keeps the error an entry's processing met (keys.entryErrors), so the entry's dead letter
 * says why rather than only how many times it was delivered; the hash expires a day after
 * its last failure.
 */
export async function recordEntryFailure(redis: RedisClient, keys: Keys, stream: string, group: string, ids: readonly string[], err: unknown): Promise<void> {
  if (ids.length === 0) return;
  const key = keys.entryErrors(stream);
  const text = `${group}: ${errorText(err).slice(0, 300)}`;
  await redis
    .multi()
    .hset(key, ...ids.flatMap((id) => [id, text]))
    .pexpire(key, 86_400_000)
    .exec();
}

/** The last error recorded for an entry (recordEntryFailure), or null. */
export function lastEntryError(redis: RedisClient, keys: Keys, stream: string, id: string): Promise<string | null> {
  return redis.hget(keys.entryErrors(stream), id);
}

/** Forgets an entry's recorded error (once it is dead-lettered). */
export async function forgetEntryError(redis: RedisClient, keys: Keys, stream: string, id: string): Promise<void> {
  await redis.hdel(keys.entryErrors(stream), id);
}
