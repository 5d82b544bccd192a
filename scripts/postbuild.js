// After tsc: tsc copies no non-TS files and sets no file modes.
// 1. Mirror src/lua/**/*.lua into dist/src/lua, so the compiled loader finds its scripts
//    next to itself, as it does when run from source.
// 2. Make dist/cli.js executable: it is the package's `profile` bin (npx, the Docker image).
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
fs.cpSync(path.join(root, 'src', 'lua'), path.join(root, 'dist', 'src', 'lua'), {
  recursive: true,
  filter: (src) => fs.statSync(src).isDirectory() || src.endsWith('.lua'),
});
// 3. The dashboard page, next to the compiled module that serves it.
fs.copyFileSync(path.join(root, 'src', 'api', 'dashboard.html'), path.join(root, 'dist', 'src', 'api', 'dashboard.html'));
fs.chmodSync(path.join(root, 'dist', 'cli.js'), 0o755);
