import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import * as prettier from 'prettier';

// Every TypeScript and script file is as the formatter (Prettier, .prettierrc.json) writes it:
// `npm run format` fixes what this finds.
const ROOT = path.join(__dirname, '..', '..', '..');

function files(dir: string, ext: RegExp): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p, ext) : ext.test(e.name) ? [p] : [];
  });
}

describe('formatting', () => {
  it('every source, test, bench and script file is formatted (npm run format)', async function () {
    this.timeout(60_000);
    const all = [
      path.join(ROOT, 'cli.ts'),
      ...['src', 'test', 'bench'].flatMap((d) => files(path.join(ROOT, d), /\.ts$/)),
      ...files(path.join(ROOT, 'scripts'), /\.js$/),
    ];
    const unformatted: string[] = [];
    for (const file of all) {
      const options = await prettier.resolveConfig(file);
      if (!(await prettier.check(fs.readFileSync(file, 'utf8'), { ...options, filepath: file }))) unformatted.push(path.relative(ROOT, file));
    }
    expect(unformatted).to.deep.equal([]);
  });
});
