import { parse } from 'url';
import type { RequestHandler, Router } from 'express';
import type { Role } from '../core/apiKeys';

/**
 * Every route of the API and the role a key needs for it (null: public). The auth guard
 * (security.ts) and the OpenAPI document (openapi.ts) read this table, and routers register
 * routes only through {@link route}, which takes a key of it: a route missing here does
 * not compile, so none can fall back to a default role unnoticed.
 */
export const ROUTES = {
  'POST /events': 'ingest',
  'GET /profile/:userId': 'read',
  'DELETE /profile/:userId': 'admin',
  'GET /profile/:userId/timeline': 'read',
  'POST /profiles': 'read',
  'POST /batch': 'admin',
  // The original system's batch trigger: the same run as POST /batch.
  'POST /collect/batch': 'admin',
  'GET /batch/:runId': 'read',
  'GET /status': 'read',
  'GET /health': null,
  'GET /ready': 'read',
  'GET /metrics': 'read',
  'GET /openapi.json': 'read',
  // The dashboard page holds no data (its calls need a key), so a browser can open it.
  'GET /': null,
  'GET /dashboard/stats': 'read',
  'GET /triggers/stream': 'read',
} as const satisfies Record<`${'GET' | 'POST' | 'DELETE'} /${string}`, Role | null>;

export type RouteKey = keyof typeof ROUTES;
export type RouteMethod = RouteKey extends `${infer M} ${string}` ? M : never;

/** A route's method and its express path. */
export function splitRouteKey(key: RouteKey): { method: RouteMethod; path: string } {
  const space = key.indexOf(' ');
  return { method: key.slice(0, space) as RouteMethod, path: key.slice(space + 1) };
}

const LOWER = { GET: 'get', POST: 'post', DELETE: 'delete' } as const;

/**
 * An express.Router mounted with app.use answers an OPTIONS request for any of its paths
 * itself (200 and an Allow list) when it hands the request back. This API serves no
 * OPTIONS (no CORS): passing it on here leaves it to the app's 404, as when every route
 * was on the app.
 */
const passOptionsOn: RequestHandler = (_req, _res, next) => next();

/** Registers the handlers of one route of the table on `router`: the only way routes are added. */
export function route(router: Router, key: RouteKey, ...handlers: RequestHandler[]): void {
  const { method, path } = splitRouteKey(key);
  router
    .route(path)
    [LOWER[method]](...handlers)
    .options(passOptionsOn);
}

/**
 * The path as express matches it (express 5 routers, path-to-regexp 8, defaults): case
 * insensitive, one trailing slash allowed, `:name` is one non-empty segment, still
 * percent-encoded. Only literal segments and `:name` ones are accepted, so a path express
 * would read differently cannot slip into the table.
 */
function compile(path: string): { regexp: RegExp; params: string[] } {
  const params: string[] = [];
  let source = '';
  for (const segment of path.split('/').slice(1)) {
    if (/^:[A-Za-z_]\w*$/.test(segment)) {
      params.push(segment.slice(1));
      source += '/([^/]+)';
    } else if (/^[A-Za-z0-9._-]*$/.test(segment)) {
      source += '/' + segment.replace(/\./g, '\\.');
    } else {
      throw new Error(`route path ${path}: only literal and :name segments are supported`);
    }
  }
  return { regexp: new RegExp(`^(?:${source})(?:/$)?$`, 'i'), params };
}

const compiled = (Object.keys(ROUTES) as RouteKey[]).map((key) => ({ key, method: splitRouteKey(key).method as string, ...compile(splitRouteKey(key).path) }));

/** Raw (still percent-encoded) path parameters by name. */
export type RawParams = Record<string, string>;

/**
 * The route of the table that serves `method` on `path` (a path as {@link requestPath}
 * gives it), with its raw parameters; HEAD is served by GET routes, as in express.
 */
export function matchRoute(method: string, path: string): { key: RouteKey; params: RawParams } | null {
  const wanted = method === 'HEAD' ? 'GET' : method;
  for (const r of compiled) {
    if (r.method !== wanted) continue;
    const m = r.regexp.exec(path);
    if (m) return { key: r.key, params: Object.fromEntries(r.params.map((name, i) => [name, m[i + 1]])) };
  }
  return null;
}

/** A matcher for one route's path (method aside): its raw parameters, or null. */
export function pathMatcher(key: RouteKey): (path: string) => RawParams | null {
  const { regexp, params } = compile(splitRouteKey(key).path);
  return (path) => {
    const m = regexp.exec(path);
    return m ? Object.fromEntries(params.map((name, i) => [name, m[i + 1]])) : null;
  };
}

const NEEDS_FULL_PARSE = /[\t\n\f\r #\u00a0\ufeff]/;

/**
 * The path of a request target as express routes on it (parseurl's pathname): an
 * origin-form target up to `?`; an absolute-form target (`http://host/path`) or one with
 * `#` or whitespace through url.parse. The guard and the node:http fast path must judge
 * the very path express will route, or a key could reach a route under a role it lacks.
 */
export function requestPath(url: string): string {
  if (url.charCodeAt(0) === 0x2f && !NEEDS_FULL_PARSE.test(url)) {
    const query = url.indexOf('?');
    return query < 0 ? url : url.slice(0, query);
  }
  return parse(url).pathname ?? '';
}
