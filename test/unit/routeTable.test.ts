import { expect } from 'chai';
import express from 'express';
import { expressApp } from '../../src/api/app';
import { apiContext } from '../../src/api/context';
import { openApiDocument, routeKeyOf } from '../../src/api/openapi';
import { ROUTES, RouteKey, matchRoute, requestPath, splitRouteKey } from '../../src/api/routeTable';
import { FAST_PROFILE_ROUTE } from '../../src/api/routes/profiles';
import { requiredRole } from '../../src/api/security';
import { Keys } from '../../src/core/keys';
import type { RedisClient } from '../../src/redis/client';
import type { Producer } from '../../src/producer/producer';
import type { ProfileReader } from '../../src/profile/reader';

/** The parts of express's router internals (router 2.x) the walk reads. */
interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
  match(path: string): boolean;
}

/** Every route layer express holds, in routing order, routers mounted with app.use included. */
function routeLayers(stack: Layer[]): Layer[] {
  return stack.flatMap((layer) => (layer.route ? [layer] : layer.handle.stack ? routeLayers(layer.handle.stack) : []));
}

// Nothing touches Redis while the routers are built.
const app = expressApp(
  apiContext({
    redis: {} as RedisClient,
    producer: {} as Producer,
    reader: {} as ProfileReader,
    keys: new Keys('t:'),
    partitions: 2,
    maxEventsPerRequest: 10,
    maxProfilesPerRequest: 10,
    maxBodyBytes: 1024,
  }),
);
const layers = routeLayers((app.router as unknown as { stack: Layer[] }).stack);
// The fast path answers before express: express's own reading of its path comes first.
const fastPath = express.Router();
fastPath.get(splitRouteKey(FAST_PROFILE_ROUTE).path, () => undefined);
const dispatchOrder = [...routeLayers((fastPath as unknown as { stack: Layer[] }).stack), ...layers];
// route() passes OPTIONS on at every route (see passOptionsOn): not a route of the API.
const methodsOf = (layer: Layer) => Object.keys(layer.route!.methods).filter((m) => m !== 'options');
const registered = layers.flatMap((layer) => methodsOf(layer).map((m) => `${m.toUpperCase()} ${layer.route!.path}`));
const table = Object.keys(ROUTES).sort();

/** The route `method path` is dispatched to (HEAD goes to GET routes), as a table key, by express's matching. */
function expressRoute(method: string, path: string): string | null {
  const wanted = method === 'HEAD' ? 'get' : method.toLowerCase();
  const layer = dispatchOrder.find((l) => l.match(path) && methodsOf(l).includes(wanted));
  return layer ? `${wanted.toUpperCase()} ${layer.route!.path}` : null;
}

/** A request path for a route, every `:param` filled with `value`. */
const pathOf = (key: RouteKey, value = 'x1') => splitRouteKey(key).path.replace(/:\w+/g, value);

describe('route table: one list of routes and roles for express, the guard and the OpenAPI document', () => {
  it('lists exactly the routes express registers, plus GET /profile/:userId served on node:http only', () => {
    expect(registered).to.not.include(FAST_PROFILE_ROUTE);
    expect(new Set(registered).size).to.equal(registered.length);
    expect([...registered, FAST_PROFILE_ROUTE].sort()).to.deep.equal(table);
  });

  it('lists exactly the operations the OpenAPI document describes', () => {
    const documented = Object.entries(openApiDocument.paths as Record<string, object>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => routeKeyOf(m, path)),
    );
    expect(documented.sort()).to.deep.equal(table);
  });

  it('marks exactly the public routes of the table with an empty security requirement in the OpenAPI document', () => {
    const paths = openApiDocument.paths as Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>;
    for (const key of Object.keys(ROUTES) as RouteKey[]) {
      const { method, path } = splitRouteKey(key);
      const op = paths[path.replace(/:(\w+)/g, '{$1}')][method.toLowerCase()];
      const guarded = ROUTES[key] !== null;
      expect([key, op.security, 401 in op.responses, 403 in op.responses, 429 in op.responses]).to.deep.equal([
        key,
        guarded ? [{ bearer: [] }] : [],
        guarded,
        guarded,
        guarded,
      ]);
    }
  });

  it('names every operation of the OpenAPI document with a unique camelCase operationId', () => {
    const ids = Object.values(openApiDocument.paths as Record<string, Record<string, { operationId?: string }>>).flatMap((ops) =>
      Object.values(ops).map((op) => op.operationId),
    );
    expect(ids.filter((id) => !/^[a-z][A-Za-z]*$/.test(id ?? ''))).to.deep.equal([]);
    expect(new Set(ids).size).to.equal(table.length);
  });

  it("has requiredRole answer each route's role (HEAD as GET), and read for a request no route serves", () => {
    for (const key of Object.keys(ROUTES) as RouteKey[]) {
      const { method } = splitRouteKey(key);
      expect([key, requiredRole(method, pathOf(key))]).to.deep.equal([key, ROUTES[key]]);
      if (method === 'GET') expect([`HEAD of ${key}`, requiredRole('HEAD', pathOf(key))]).to.deep.equal([`HEAD of ${key}`, ROUTES[key]]);
    }
    expect(requiredRole('GET', '/nowhere')).to.equal('read');
    expect(requiredRole('POST', '/health')).to.equal('read');
    expect(requiredRole('PUT', '/profile/x1')).to.equal('read');
    expect(requiredRole('DELETE', '/profile/x1/timeline')).to.equal('read');
    expect(requiredRole('GET', '/profile/')).to.equal('read');
  });

  it('matches a request to the route express dispatches it to: case, trailing slash, encoded slashes, extra segments', () => {
    const paths = (Object.keys(ROUTES) as RouteKey[]).flatMap((key) => {
      const p = pathOf(key);
      return [p, p.toUpperCase(), `${p}/`, `${p}//`, `${p}/more`, pathOf(key, 'a%2Fb'), pathOf(key, ''), `/x${p}`];
    });
    for (const path of paths) {
      for (const method of ['GET', 'HEAD', 'POST', 'DELETE', 'PUT']) {
        expect([method, path, matchRoute(method, path)?.key ?? null]).to.deep.equal([method, path, expressRoute(method, path)]);
      }
    }
  });

  it('reads the path of a request target the way express does (parseurl)', () => {
    expect(requestPath('/profile/a?x=/b')).to.equal('/profile/a');
    expect(requestPath('http://host:8080/profile/a?x=1')).to.equal('/profile/a');
    expect(requestPath('/profile/a#/timeline')).to.equal('/profile/a');
    expect(requestPath('/profile/%E0%A4%A')).to.equal('/profile/%E0%A4%A');
    // A read key may not erase a user by spelling the route differently.
    for (const target of ['/PROFILE/u1', '/profile/u1/', 'http://h/profile/u1', '/profile/u1#x', '/Profile/u1?x']) {
      expect([target, requiredRole('DELETE', requestPath(target))]).to.deep.equal([target, 'admin']);
    }
    expect(requiredRole('POST', requestPath('/EVENTS'))).to.equal('ingest');
  });
});
