/**
 * GET /profile latency from closed-loop keep-alive clients, timed with a high-resolution
 * clock. Run it in its own process against a running API:
 *   node dist/bench/read.js [url=http://127.0.0.1:8080] [clients=4] [seconds=10] [users=1000] [user|uniform]
 * Users are drawn from user-1..user-<users> as `profile simulate` draws them for its events
 * (Zipf: a bid request comes as often as the user is active), or uniformly with `uniform`
 * as the fifth argument, or every request reads that user when one is given there.
 * Prints JSON: requests/s, p50/p90/p99/max in ms, and the status codes seen.
 */
import http from 'http';
import { USER_SKEW, zipf } from '../src/dev/simulate';

async function main() {
  const url = new URL(process.argv[2] ?? 'http://127.0.0.1:8080');
  const clients = Number(process.argv[3] ?? 4);
  const seconds = Number(process.argv[4] ?? 10);
  const users = Number(process.argv[5] ?? 1000);
  const draw = process.argv[6];
  const only = draw === 'uniform' ? undefined : draw;
  const pick = draw === 'uniform' ? () => Math.floor(Math.random() * users) : zipf(users, USER_SKEW, Math.random);
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const end = Date.now() + seconds * 1000;

  const get = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.get({ host: url.hostname, port: url.port, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });

  const loop = async () => {
    while (Date.now() < end) {
      const user = only ?? `user-${1 + pick()}`;
      const t = process.hrtime.bigint();
      const status = await get(`/profile/${user}`);
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: clients }, loop));
  const elapsed = (Date.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => Number(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(3));
  console.log(
    JSON.stringify({
      clients,
      seconds: elapsed,
      requests: latencies.length,
      read_per_s: Math.round(latencies.length / elapsed),
      read_p50_ms: q(0.5),
      read_p90_ms: q(0.9),
      read_p99_ms: q(0.99),
      read_max_ms: q(1),
      statuses,
    }),
  );
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
