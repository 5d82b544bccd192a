// `npm start`: build only when a source is newer than the build (npm ci has built already:
// running tsc again cost ~15 s before the API listened). Sources: cli.ts, src/, bench/,
// test/ (tsc compiles them together), tsconfig.json and package.json.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.join(__dirname, '..');
const built = path.join(root, 'dist', 'cli.js');

function newest(p) {
  let stat;
  try {
    stat = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let t = 0;
  for (const name of fs.readdirSync(p)) t = Math.max(t, newest(path.join(p, name)));
  return t;
}

const builtAt = fs.existsSync(built) ? fs.statSync(built).mtimeMs : 0;
const sources = ['cli.ts', 'src', 'bench', 'test', 'tsconfig.json', 'package.json'].map((p) => newest(path.join(root, p)));
if (builtAt === 0 || Math.max(...sources) > builtAt) {
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
