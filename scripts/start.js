// `npm start`: build when a source is newer than the build (build-if-stale.js), then run
// `profile up` in this very process. One command for npm's shell to run, so the shell execs
// it and a Ctrl-C reaches only this process and npm: it stops cleanly and exits 0 (with
// `a && b` the shell itself died of the SIGINT, and npm reported 130).
const path = require('path');
const { spawnSync } = require('child_process');

const built = spawnSync(process.execPath, [path.join(__dirname, 'build-if-stale.js')], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
process.argv = [process.argv[0], path.join(__dirname, '..', 'dist', 'cli.js'), 'up', ...process.argv.slice(2)];
require(path.join(__dirname, '..', 'dist', 'cli.js'));
