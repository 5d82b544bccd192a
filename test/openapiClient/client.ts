/**
 * A client of the API written only against the types openapi-typescript generates from
 * GET /openapi.json, calling through openapi-fetch. Not part of the build (tsconfig.json
 * excludes this folder: `./schema` exists only at test time): test/functional/api/openapiClient.test.ts
 * generates schema.d.ts next to a copy of this file, compiles both with tsc (strict; any type
 * error fails the test) and runs {@link run} against a real server.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

type Profile = components['schemas']['Profile'];
type FlatProfile = components['schemas']['FlatProfile'];

/**
 * A tag value's generated type admits each kind's JSON shape — a number, text, an object of
 * numbers (count_by, histogram, percentile), a list (last_k, first_k) and null — and no other.
 */
export const TAG_SHAPES: Profile['tags'][string][] = [3.5, 'high_value_user', { p50: 3.5, '[10,100)': 2 }, ['ad-1', 470.5], null];
// @ts-expect-error: a tag value is never a boolean
export const NOT_A_TAG_SHAPE: Profile['tags'][string] = true;

/** GET /profile/{userId} answers either shape (the `view` parameter picks); the fused one has a meta object. */
const isFused = (p: Profile | FlatProfile): p is Profile => typeof p.meta === 'object';

/** What the calls answered, for the test to compare with the server's state. */
export interface ClientRun {
  eventIds: string[];
  profile: Profile;
  flat: FlatProfile;
  /** GET /profile/gen-1?tags=spend_24h,views_5m and POST /profiles with the same tags. */
  tagged: { one: Profile; many: paths['/profiles']['post']['responses'][200]['content']['application/json']['profiles'] };
  profiles: paths['/profiles']['post']['responses'][200]['content']['application/json']['profiles'];
  invalidEvent: { status: number; field: string; message: string };
  badUserId: { status: number; error: string };
  unknownUser: { status: number; error: string; userId: string };
  /** POST /events?wait=applied&timeout_ms=0 (no consumer runs meanwhile): its applied flag. */
  waited: boolean | undefined;
  /** GET /profile/gen-1?max_lag_ms=1000 on a server that does not track the lag: the 503's bound. */
  stale: { status: number; maxLagMs: number | undefined };
}

function fail(what: string, response: Response, body: unknown): never {
  throw new Error(`${what}: HTTP ${response.status} ${JSON.stringify(body)}`);
}

/**
 * Ingests events with an `ingest` key, lets `drain` have them processed, then reads with a
 * `read` key: one profile, a batch of profiles, and the documented 400s and 404.
 */
export async function run(baseUrl: string, keys: { ingest: string; read: string }, drain: () => Promise<void>): Promise<ClientRun> {
  const writer = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${keys.ingest}` } });
  const reader = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${keys.read}` } });

  const events: components['schemas']['Event'][] = [
    { user_id: 'gen-1', type: 'impression', ad_id: 'ad-1', campaign_id: 'c-1' },
    { user_id: 'gen-1', type: 'click', ad_id: 'ad-1', campaign_id: 'c-1' },
    { user_id: 'gen-1', type: 'purchase', amount: 470.5, currency: 'EUR', ad_id: 'ad-1', campaign_id: 'c-1' },
    { user_id: 'gen-2', type: 'impression', ad_id: 'ad-2', campaign_id: 'c-1' },
  ];
  const ingested = await writer.POST('/events', { body: events });
  if (!ingested.data) fail('POST /events', ingested.response, ingested.error);
  if (ingested.data.accepted !== events.length) fail('POST /events accepted', ingested.response, ingested.data);

  // The body type allows any number; the server's rule (amount >= 0) answers 400 FieldErrors.
  const invalid = await writer.POST('/events', { body: { user_id: 'gen-3', type: 'purchase', amount: -1 } });
  if (invalid.response.status !== 400 || !invalid.error || !('errors' in invalid.error)) fail('POST /events (invalid)', invalid.response, invalid.error);
  const [fieldError] = invalid.error.errors;

  await drain();

  const one = await reader.GET('/profile/{userId}', { params: { path: { userId: 'gen-1' } } });
  if (!one.data || !isFused(one.data)) fail('GET /profile/gen-1', one.response, one.error ?? one.data);

  const flat = await reader.GET('/profile/{userId}', { params: { path: { userId: 'gen-1' }, query: { view: 'flat' } } });
  if (!flat.data || isFused(flat.data)) fail('GET /profile/gen-1?view=flat', flat.response, flat.error ?? flat.data);

  const many = await reader.POST('/profiles', { body: { user_ids: ['gen-1', 'gen-2', 'nobody'] } });
  if (!many.data) fail('POST /profiles', many.response, many.error);

  const taggedOne = await reader.GET('/profile/{userId}', { params: { path: { userId: 'gen-1' }, query: { tags: 'spend_24h,views_5m' } } });
  if (!taggedOne.data || !isFused(taggedOne.data)) fail('GET /profile/gen-1?tags=', taggedOne.response, taggedOne.error ?? taggedOne.data);
  const taggedMany = await reader.POST('/profiles', { body: { user_ids: ['gen-1'], tags: ['spend_24h', 'views_5m'] } });
  if (!taggedMany.data) fail('POST /profiles (tags)', taggedMany.response, taggedMany.error);

  // openapi-fetch percent-encodes the path parameter: the server sees a{b} and names the id rule.
  const bad = await reader.GET('/profile/{userId}', { params: { path: { userId: 'a{b}' } } });
  if (bad.response.status !== 400 || !bad.error || !('error' in bad.error)) fail('GET /profile/a{b}', bad.response, bad.error ?? bad.data);

  const missing = await reader.GET('/profile/{userId}', { params: { path: { userId: 'nobody' } } });
  if (missing.response.status !== 404 || !missing.error || !('user_id' in missing.error))
    fail('GET /profile/nobody', missing.response, missing.error ?? missing.data);

  const waited = await writer.POST('/events', { params: { query: { wait: 'applied', timeout_ms: 0 } }, body: { user_id: 'gen-4', type: 'click' } });
  if (!waited.data) fail('POST /events?wait=applied', waited.response, waited.error);
  const stale = await reader.GET('/profile/{userId}', { params: { path: { userId: 'gen-1' }, query: { max_lag_ms: 1000 } } });
  if (stale.response.status !== 503 || !stale.error) fail('GET /profile/gen-1?max_lag_ms=1000', stale.response, stale.error ?? stale.data);

  return {
    waited: waited.data.applied,
    stale: { status: stale.response.status, maxLagMs: 'max_lag_ms' in stale.error ? stale.error.max_lag_ms : undefined },
    eventIds: ingested.data.event_ids,
    profile: one.data,
    flat: flat.data,
    tagged: { one: taggedOne.data, many: taggedMany.data.profiles },
    profiles: many.data.profiles,
    invalidEvent: { status: invalid.response.status, field: fieldError.field, message: fieldError.message },
    badUserId: { status: bad.response.status, error: bad.error.error },
    unknownUser: { status: missing.response.status, error: missing.error.error, userId: missing.error.user_id },
  };
}

/**
 * Never called: calls the generated types must refuse. Each `@ts-expect-error` fails the
 * compilation if the line type-checks, so the test also proves tsc checks the calls against
 * the document rather than against `any`.
 */
export function refusedCalls(client: Client<paths>): void {
  // @ts-expect-error: 'view' is not an event type
  void client.POST('/events', { body: { user_id: 'u', type: 'view' } });
  // @ts-expect-error: the path parameter is required
  void client.GET('/profile/{userId}', {});
  // @ts-expect-error: POST /profiles takes user_ids
  void client.POST('/profiles', { body: { ids: ['u'] } });
  // @ts-expect-error: the only view is 'flat'
  void client.GET('/profile/{userId}', { params: { path: { userId: 'u' }, query: { view: 'full' } } });
  // @ts-expect-error: tags in POST /profiles is a list of names
  void client.POST('/profiles', { body: { user_ids: ['u'], tags: 'views_5m' } });
  // @ts-expect-error: the only wait is 'applied'
  void client.POST('/events', { params: { query: { wait: 'acked' } }, body: { user_id: 'u', type: 'click' } });
  // @ts-expect-error: max_lag_ms is a number of milliseconds
  void client.GET('/profile/{userId}', { params: { path: { userId: 'u' }, query: { max_lag_ms: 'soon' } } });
  // @ts-expect-error: no such route
  void client.GET('/profile');
}
