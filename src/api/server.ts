import http from 'http';
import type { AddressInfo } from 'net';
import type { RequestListener } from 'http';
import { listenError } from '../core/errors';

export interface HttpServerHandle {
  server: http.Server;
  port: number;
  /** Stops accepting connections, lets requests in flight finish, closes idle keep-alives. */
  close(): Promise<void>;
}

/** Listens with `app` on host:port (port 0 = any free port). */
export function listen(app: RequestListener, host: string, port: number): Promise<HttpServerHandle> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(app);
    // Bidders keep connections open: keep them alive longer than typical LB idle timeouts.
    server.keepAliveTimeout = 65_000;
    const failed = (err: NodeJS.ErrnoException) => reject(listenError(err, host, port, '--port / PORT'));
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeIdleConnections();
          }),
      });
    });
  });
}
