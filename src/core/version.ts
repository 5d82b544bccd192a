import fs from 'fs';
import path from 'path';

/** The package's version, from its package.json (one level above dist/): the CLI's --version and the OpenAPI document's. */
export const PACKAGE_VERSION: string = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string })
  .version;
