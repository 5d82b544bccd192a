// tsc does not copy non-TS files: mirror src/lua/**/*.lua into dist/src/lua so the
// compiled loader finds its scripts next to itself, as it does when run from source.
const fs = require('fs');
const path = require('path');

const from = path.join(__dirname, '..', 'src', 'lua');
const to = path.join(__dirname, '..', 'dist', 'src', 'lua');
fs.cpSync(from, to, { recursive: true, filter: (src) => fs.statSync(src).isDirectory() || src.endsWith('.lua') });
