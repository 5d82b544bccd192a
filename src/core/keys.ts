import { EVENT_TYPES, EventType } from './event';

/**
 * Every Redis key name the product uses is built here and nowhere else.
 *
 * Per-user keys share the hash tag `{<user_id>}` so one user's keys live in one cluster
 * slot and every per-user script is cluster-safe; each stream partition `ev:{pN}` carries
 * its own hash tag so partitions spread over slots.
 */
export class Keys {
  /**
   * @param prefix prepended to every key (default none), e.g. `"ps:"` to share a Redis.
   * @param generation the window state generation the pane keys name (0: the first; a
   *   change of tags that needs a backfill builds its state in a new one, see
   *   src/batch/tagChange.ts).
   */
  constructor(
    readonly prefix = '',
    readonly generation = 0,
  ) {}

  /** The same keys with the pane keys of window state generation `generation`. */
  withGeneration(generation: number): Keys {
    return generation === this.generation ? this : new Keys(this.prefix, generation);
  }

  /** `p` / `t` for generation 0, `p<g>` / `t<g>` for generation g. */
  private gen(kind: 'p' | 't'): string {
    return this.generation === 0 ? kind : `${kind}${this.generation}`;
  }

  /** Stream partition `n`. */
  stream(partition: number): string {
    return `${this.prefix}ev:{p${partition}}`;
  }

  /** All stream partitions, in order. */
  streams(partitions: number): string[] {
    return Array.from({ length: partitions }, (_, i) => this.stream(i));
  }

  /**
   * Hash of a partition's failing entries: entry id → the last error a group's processing
   * of it met (`<group>: <message>`), so its dead letter says why. Same slot as the stream;
   * fields are dropped when the entry is dead-lettered, the hash expires a day after its last failure.
   */
  entryErrors(stream: string): string {
    return `${stream}:errors`;
  }

  /**
   * Hash of a group's live consumers: name → until when (epoch ms) its process vouches for
   * it (renewed every few seconds, dropped on a clean stop). A consumer listed here is never
   * removed from the group by a peer, however long it has been idle on a quiet partition.
   */
  liveConsumers(group: string): string {
    return `${this.prefix}ev:live:${group}`;
  }

  /** Dead-letter stream: entries no consumer could process, with the error. */
  deadLetters(): string {
    return `${this.prefix}ev:dead`;
  }

  /**
   * Hash of a user's window panes for one event type (window state v3): numeric panes
   * `s<second>`/`m<minute>`/`h<hour>`, value panes `<field><level><index>`, dedup buckets
   * `d<first byte of the event id's fingerprint>`, waiting distinct values `F<field>`, the
   * running totals and meta `T`, count_by totals `C<spec>` (see src/lua/includes/panes.lua).
   * Generation g > 0: `u:{<user>}:p<g>:<type>`.
   */
  panes(userId: string, type: EventType): string {
    return `${this.prefix}u:{${userId}}:${this.gen('p')}:${type}`;
  }

  /** Sorted set indexing `panes(userId, type)` by time: members `m<minute>` and `h<hour>` that hold state. */
  paneIndex(userId: string, type: EventType): string {
    return `${this.prefix}u:{${userId}}:${this.gen('t')}:${type}`;
  }

  /** v1 layout (before panes): sorted set of in-window events, member event_id, score event time. Folded into the panes on the next write, or by `profile migrate`. */
  legacyWindow(userId: string, type: EventType): string {
    return `${this.prefix}u:{${userId}}:w:${type}`;
  }

  /** v1 layout: hash event_id → packed field values of `legacyWindow(userId, type)`. */
  legacyWindowValues(userId: string, type: EventType): string {
    return `${this.prefix}u:{${userId}}:wv:${type}`;
  }

  /** Hash of realtime tags as of the user's last event (for inspection). */
  realtime(userId: string): string {
    return `${this.prefix}u:{${userId}}:rt`;
  }

  /** Hash of offline tags written by the batch. */
  offline(userId: string): string {
    return `${this.prefix}u:{${userId}}:off`;
  }

  /** Hash of window tags a `profile batch --windows` run computed from the ODS (for `profile verify`). */
  batchWindows(userId: string): string {
    return `${this.prefix}u:{${userId}}:wb`;
  }

  /**
   * Every key a user can have (panes and their index of every event type in every window
   * state generation up to two past this one — the ones a change of tags may still write
   * or read —, v1 windows, rt, off, wb): one slot.
   */
  userKeys(userId: string): string[] {
    const out: string[] = [];
    for (let g = 0; g <= this.generation + 2; g++) {
      const k = this.withGeneration(g);
      for (const type of EVENT_TYPES) out.push(k.panes(userId, type), k.paneIndex(userId, type));
    }
    for (const type of EVENT_TYPES) out.push(this.legacyWindow(userId, type), this.legacyWindowValues(userId, type));
    out.push(this.realtime(userId), this.offline(userId), this.batchWindows(userId), this.triggerState(userId), this.triggerOutbox(userId));
    return out;
  }

  /** Hash of the triggers that fired for the user and are not re-armed yet (field: trigger name). */
  triggerState(userId: string): string {
    return `${this.prefix}u:{${userId}}:trg`;
  }

  /** List of the user's firings not yet appended to the trigger streams (see updateWindows.lua). */
  triggerOutbox(userId: string): string {
    return `${this.prefix}u:{${userId}}:trgout`;
  }

  /** Stream of trigger firings of one partition's users. */
  triggerStream(partition: number): string {
    return `${this.prefix}trig:{p${partition}}`;
  }

  /** Sorted set of the firing ids a trigger stream holds (dedup of appends; score: when appended). */
  triggerSeen(partition: number): string {
    return `${this.prefix}trig:{p${partition}}:seen`;
  }

  /** Sorted set of erased users: member user id, score the erasure time (ms). */
  erasures(): string {
    return `${this.prefix}erasures`;
  }

  /** SCAN pattern matching every user's key of one kind (the prefix holds no glob characters: config checks it). */
  userKeyPattern(kind: 'rt' | 'off' | 'wb' | 'w:*'): string {
    return `${this.prefix}u:{*}:${kind}`;
  }

  /** Lock held by the running batch (value: its run id). */
  batchLock(): string {
    return `${this.prefix}batch:lock`;
  }

  /** Hash describing one batch run: state, times, summary. */
  batchRun(runId: string): string {
    return `${this.prefix}batch:run:${runId}`;
  }

  /** Sorted set of recent batch run ids by start time (the newest 100). */
  batchRuns(): string {
    return `${this.prefix}batch:runs`;
  }

  /** Id of the newest finished `--windows` run, which `profile verify` checks. */
  batchWindowsRun(): string {
    return `${this.prefix}batch:windows_run`;
  }

  /**
   * Hash of the tag configs: `active` (the version every process runs), `active_since`
   * (epoch ms), `previous` and `previous_since` (the one before the last switch), and
   * `doc:<version>` (each recorded config's canonical JSON). See src/redis/tagConfigs.ts.
   */
  tagConfigs(): string {
    return `${this.prefix}cfg:{tags}`;
  }

  /** Hash of the running processes: id (host:pid) → JSON of their roles, config version and until when they vouch for it. */
  tagConfigProcesses(): string {
    return `${this.prefix}cfg:{tags}:procs`;
  }

  /** Lock of the `profile tags apply` that is backfilling (value: its owner id; expires unless renewed). */
  tagApplyLock(): string {
    return `${this.prefix}cfg:{tags}:apply`;
  }
}

/**
 * The partition a user's events go to: FNV-1a (32-bit) of the user id, mod `partitions`.
 * Stable across processes and versions, so a user always maps to the same partition and
 * one user's events stay in order. Changing the partition count remaps users: drain the
 * streams first.
 */
export function partitionFor(userId: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
