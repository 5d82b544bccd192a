import { randomBytes } from 'crypto';
import { groupCaughtUp, PartitionStatus } from '../redis/streamGroups';
import { ApiUnreachableError } from '../core/errors';

/** How long the API may stay unreachable during a run before the run stops and says so (ms). */
const UNREACHABLE_MS = 5_000;

/** Why a request could not reach the API: the cause of fetch's "fetch failed" (ECONNREFUSED …). */
function reachCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** Connection trouble of a run: since when the API has not answered, and why. */
interface Reach {
  downSince?: number;
  cause?: string;
}

/** Options of `profile simulate`. */
export interface SimulateOptions {
  /** Base URL of the API. */
  url: string;
  /** Distinct users (Zipf-skewed: a few are very active). */
  users: number;
  /** Target events per second. */
  rate: number;
  /** Seconds to send for. */
  durationS: number;
  /** Events per POST (NDJSON). @defaultValue rate/20, from 1 to 1000 */
  batchSize?: number;
  /** Requests in flight at once. @defaultValue 4 */
  concurrency?: number;
  /** Seed of the generator (same seed, same traffic). @defaultValue random */
  seed?: number;
  /** After sending, wait (at most this many seconds) until the realtime group has processed everything. @defaultValue 60 */
  waitDrainS?: number;
  /** Sent as `Authorization: Bearer <key>` when the API requires keys. */
  apiKey?: string;
  /** Receives a progress line now and then. */
  progress?: (line: string) => void;
  /** Stops sending once aborted (before durationS is up); what is in flight is still awaited. */
  signal?: AbortSignal;
}

export interface SimulateSummary {
  sent: number;
  accepted: number;
  rejected: number;
  failed_requests: number;
  retries_after_503: number;
  by_type: Record<string, number>;
  send_seconds: number;
  accepted_per_s: number;
  /** Seconds from the first send until the realtime group had processed every accepted event (null: not within waitDrainS). */
  processed_seconds: number | null;
  processed_per_s: number | null;
  top_users: string[];
}

/**
 * Sends one NDJSON request, resending on connection errors (the same event ids make a
 * resend safe) and after 503 (waiting Retry-After); counts the outcome in `s`.
 */
async function postEvents(base: string, auth: Record<string, string>, lines: string, count: number, s: SimulateSummary, reach: Reach): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    let res: Response;
    try {
      res = await fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', ...auth }, body: lines });
      reach.downSince = undefined;
    } catch (err) {
      reach.downSince ??= Date.now();
      reach.cause = reachCause(err);
      if (Date.now() - reach.downSince > UNREACHABLE_MS) break; // the run stops (see simulate)
      await new Promise((r) => setTimeout(r, 500)); // connection refused/reset: the same ids make a resend safe
      continue;
    }
    const body = await res.text();
    if (res.status === 202) {
      s.accepted += (JSON.parse(body) as { accepted: number }).accepted;
      return;
    }
    if (res.status === 503) {
      s.retries_after_503++;
      const wait = Number(res.headers.get('retry-after') ?? '1');
      await new Promise((r) => setTimeout(r, (Number.isFinite(wait) ? Math.min(wait, 30) : 1) * 1000));
      continue;
    }
    if (res.status >= 400 && res.status < 500) {
      s.rejected += count;
      return;
    }
  }
  s.failed_requests++;
}

/** Fails at once, with the cause, when nothing answers at the API's URL (GET /health). */
async function probe(base: string, auth: Record<string, string>): Promise<void> {
  try {
    await fetch(`${base}/health`, { headers: auth, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new ApiUnreachableError(`cannot reach the API at ${base} (${reachCause(err)}): is \`profile up\` or \`profile serve\` running there? Check --url`);
  }
}

/** Polls GET /status until the realtime group has processed everything (or `waitS` passes); records when in `s`. */
async function waitForDrain(base: string, auth: Record<string, string>, s: SimulateSummary, start: number, waitS: number): Promise<void> {
  const deadline = Date.now() + waitS * 1000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/status`, { headers: auth });
      const { partitions } = (await res.json()) as { partitions: PartitionStatus[] };
      if (partitions.every((p) => groupCaughtUp(p, 'realtime'))) {
        s.processed_seconds = (Date.now() - start) / 1000;
        s.processed_per_s = Math.round(s.accepted / s.processed_seconds);
        return;
      }
    } catch {
      // API briefly unavailable: keep polling until the deadline.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** mulberry32: a small seeded PRNG, so a seed reproduces the same traffic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The Zipf exponent of the users' activity: user-(k+1) sends events in proportion to 1/(k+1)^USER_SKEW. */
export const USER_SKEW = 1.1;

/** Samples 0..n-1 with P(k) ∝ 1/(k+1)^s. */
export function zipf(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) cdf[k] = total += 1 / Math.pow(k + 1, s);
  return () => {
    const x = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * Generates an ad funnel: mostly impressions; a click follows an impression of the same
 * user (about 4 % of that user's events), and about 10 % of clicks lead to a purchase a
 * few events later, on the ad and campaign the user last saw. Users and campaigns are Zipf-skewed.
 */
export class TrafficGenerator {
  private readonly random: () => number;
  private readonly pickUser: () => number;
  private readonly pickCampaign: () => number;
  private readonly lastSeen = new Map<number, { ad: string; campaign: string; willBuy: boolean }>();
  private readonly runId: string;
  private n = 0;

  constructor(
    readonly users: number,
    seed: number,
    campaigns = 20,
  ) {
    this.random = prng(seed);
    this.pickUser = zipf(users, USER_SKEW, this.random);
    this.pickCampaign = zipf(campaigns, 0.8, this.random);
    this.runId = `${seed.toString(36)}-${randomBytes(3).toString('hex')}`;
  }

  /** Next event at time `now`, with a client-side event id so a resend is idempotent. */
  next(now: number): Record<string, unknown> {
    const u = this.pickUser();
    const user_id = `user-${u + 1}`;
    const event_id = `sim-${this.runId}-${++this.n}`;
    const seen = this.lastSeen.get(u);
    const r = this.random();
    if (seen?.willBuy && r < 0.3) {
      seen.willBuy = false;
      const amount = Math.round(Math.exp(3 + this.random() * 1.6) * 100) / 100;
      return { event_id, user_id, type: 'purchase', ts: now, ad_id: seen.ad, campaign_id: seen.campaign, amount, currency: 'USD' };
    }
    if (seen && r < 0.04) {
      seen.willBuy = this.random() < 0.1;
      return { event_id, user_id, type: 'click', ts: now, ad_id: seen.ad, campaign_id: seen.campaign };
    }
    const c = this.pickCampaign() + 1;
    const campaign = `c-${c}`;
    const ad = `ad-${c}-${1 + Math.floor(this.random() * 5)}`;
    this.lastSeen.set(u, { ad, campaign, willBuy: seen?.willBuy ?? false });
    return { event_id, user_id, type: 'impression', ts: now, ad_id: ad, campaign_id: campaign };
  }
}

/** Sends generated traffic to a running API at a target rate and reports what happened. */
export async function simulate(opts: SimulateOptions): Promise<SimulateSummary> {
  const base = opts.url.replace(/\/+$/, '');
  const auth: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  const batchSize = opts.batchSize ?? Math.min(1000, Math.max(1, Math.round(opts.rate / 20)));
  const concurrency = opts.concurrency ?? 4;
  const gen = new TrafficGenerator(opts.users, opts.seed ?? Math.floor(Math.random() * 2 ** 31));
  const s: SimulateSummary = {
    sent: 0,
    accepted: 0,
    rejected: 0,
    failed_requests: 0,
    retries_after_503: 0,
    by_type: {},
    send_seconds: 0,
    accepted_per_s: 0,
    processed_seconds: null,
    processed_per_s: null,
    top_users: [],
  };
  const perUser = new Map<string, number>();
  const start = Date.now();
  const end = start + opts.durationS * 1000;
  let lastProgress = start;

  const reach: Reach = {};
  const post = (lines: string, count: number) => postEvents(base, auth, lines, count, s, reach);
  const unreachable = () =>
    new ApiUnreachableError(
      `the API at ${base} stopped answering (${reach.cause}) for ${UNREACHABLE_MS / 1000} s: ${s.accepted} of ${s.sent} events were accepted before; is it still running?`,
    );
  await probe(base, auth);

  const inflight = new Set<Promise<void>>();
  while (Date.now() < end && !opts.signal?.aborted) {
    const due = Math.floor(((Date.now() - start) / 1000) * opts.rate) - s.sent;
    if (due < batchSize && due < opts.rate / 10) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    while (inflight.size >= concurrency) await Promise.race(inflight);
    if (reach.downSince !== undefined && Date.now() - reach.downSince > UNREACHABLE_MS) {
      await Promise.all(inflight);
      throw unreachable();
    }
    const n = Math.min(batchSize, Math.max(due, 1));
    const now = Date.now();
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = gen.next(now);
      lines.push(JSON.stringify(e));
      s.by_type[e.type as string] = (s.by_type[e.type as string] ?? 0) + 1;
      perUser.set(e.user_id as string, (perUser.get(e.user_id as string) ?? 0) + 1);
    }
    s.sent += n;
    const p = post(lines.join('\n'), n).finally(() => inflight.delete(p));
    inflight.add(p);
    if (opts.progress && now - lastProgress >= 1000) {
      lastProgress = now;
      opts.progress(`sent ${s.sent}, accepted ${s.accepted}, ${Math.round(s.accepted / ((now - start) / 1000))} events/s`);
    }
  }
  await Promise.all(inflight);
  if (reach.downSince !== undefined && Date.now() - reach.downSince > UNREACHABLE_MS) throw unreachable();
  s.send_seconds = (Date.now() - start) / 1000;
  s.accepted_per_s = Math.round(s.accepted / s.send_seconds);
  s.top_users = [...perUser.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([u]) => u);

  await waitForDrain(base, auth, s, start, opts.waitDrainS ?? 60);
  return s;
}
