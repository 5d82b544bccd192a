/**
 * The ceiling for GET /profile: a minimal node:http server answering every request with a
 * fixed JSON profile of the same size class. Prints its port on stdout.
 *   node dist/bench/bare.js
 */
import http from 'http';
import type { AddressInfo } from 'net';

const body = JSON.stringify({
  user_id: 'user-1',
  tags: {
    views_5m: 3,
    views_1h: 12,
    clicks_5m: 0,
    clicks_24h: 1,
    purchases_24h: 0,
    spend_24h: 0,
    distinct_ads_1h: 4,
    campaign_views_1h: { 'c-1': 7, 'c-2': 5 },
  },
  meta: { as_of: 1795687801377, last_event_at: 1795687801302 },
});
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
