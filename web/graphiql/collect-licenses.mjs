// collect-licenses.mjs OUTDIR
//
// Writes the license texts of every npm package whose code ends up in the
// assets that build.sh copies into graphiql/assets/, one file per package
// (OUTDIR/<name>.txt, "@scope/pkg" becomes "scope__pkg.txt"), plus
// OUTDIR/INDEX.txt listing package, version, SPDX license and file.
//
// Which packages are bundled:
//   - graphiql.min.js: every package named in its source map (it is the
//     upstream UMD build: graphiql, @graphiql/*, graphql, codemirror,
//     markdown-it, radix-ui, ...). Sources from the graphiql monorepo appear
//     as "../../<dir>/..." and are mapped to their npm names below.
//   - react.production.min.js: react.
//   - react-dom.production.min.js: react-dom and scheduler.
//   - graphiql.min.css: the Roboto and Fira Code fonts (notices/fonts.txt).
//
// License texts come from node_modules (installed by npm ci from
// package-lock.json). A package that the upstream bundle contains but that
// is not installed here, or that ships no license file, is taken from
// notices/<name>.txt; failing that, a notice is generated from the
// package.json "license" field. A bundled package with no license
// information at all fails the build, so a graphiql upgrade that bundles
// something new cannot silently drop a notice.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.join(here, 'node_modules');
const noticesDir = path.join(here, 'notices');

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node collect-licenses.mjs OUTDIR');
  process.exit(2);
}

// Directories of the graphiql monorepo as they appear in the source map.
const monorepo = {
  'graphiql-react': '@graphiql/react',
  'graphiql-toolkit': '@graphiql/toolkit',
  'graphiql-plugin-doc-explorer': '@graphiql/plugin-doc-explorer',
  'graphiql-plugin-history': '@graphiql/plugin-history',
  'graphql-language-service': 'graphql-language-service',
  'codemirror-graphql': 'codemirror-graphql',
};

function packagesInSourceMap(mapFile) {
  const map = JSON.parse(fs.readFileSync(mapFile, 'utf8'));
  const names = new Set();
  for (const src of map.sources) {
    const i = src.lastIndexOf('node_modules/');
    if (i >= 0) {
      const parts = src.slice(i + 'node_modules/'.length).split('/');
      names.add(parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]);
      continue;
    }
    // "../src/GraphiQL.tsx" is graphiql itself; "../../<dir>/..." a sibling package.
    const parts = src.split('/').filter((p) => p !== '..' && p !== '.');
    if (parts[0] === 'src') {
      names.add('graphiql');
    } else if (monorepo[parts[0]]) {
      names.add(monorepo[parts[0]]);
    } else {
      throw new Error(`${mapFile}: cannot tell which package ${src} belongs to`);
    }
  }
  return names;
}

// Every installed package directory, by name (top level first).
function installedPackages() {
  const found = new Map();
  const walk = (dir) => {
    if (!fs.existsSync(dir)) return;
    const dirs = [];
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      if (entry.name.startsWith('@')) {
        for (const sub of fs.readdirSync(path.join(dir, entry.name), { withFileTypes: true })) {
          if (sub.isDirectory()) dirs.push([`${entry.name}/${sub.name}`, path.join(dir, entry.name, sub.name)]);
        }
      } else {
        dirs.push([entry.name, path.join(dir, entry.name)]);
      }
    }
    for (const [name, pkgDir] of dirs) {
      if (!fs.existsSync(path.join(pkgDir, 'package.json'))) continue;
      if (!found.has(name)) found.set(name, pkgDir);
    }
    for (const [, pkgDir] of dirs) walk(path.join(pkgDir, 'node_modules'));
  };
  walk(nodeModules);
  return found;
}

const flatName = (name) => name.replace(/^@/, '').replace('/', '__');

function personName(p) {
  if (!p) return '';
  if (typeof p === 'string') return p;
  return [p.name, p.email && `<${p.email}>`].filter(Boolean).join(' ');
}

const wanted = packagesInSourceMap(path.join(nodeModules, 'graphiql', 'graphiql.min.js.map'));
for (const name of ['graphiql', 'react', 'react-dom', 'scheduler']) wanted.add(name);

const installed = installedPackages();
fs.mkdirSync(outDir, { recursive: true });

const index = [];
const problems = [];
for (const name of [...wanted].sort()) {
  const file = `${flatName(name)}.txt`;
  const pkgDir = installed.get(name);
  const pkg = pkgDir ? JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) : null;
  let version = pkg ? pkg.version : '(not installed)';
  let spdx = pkg ? (typeof pkg.license === 'string' ? pkg.license : pkg.license?.type || '') : '';
  const licenseFile = pkgDir &&
    fs.readdirSync(pkgDir).filter((f) => /^(licen[cs]e|copying)([-._].*)?$/i.test(f)).sort()[0];
  const notice = path.join(noticesDir, file);

  let text;
  let source;
  if (licenseFile) {
    text = fs.readFileSync(path.join(pkgDir, licenseFile), 'utf8');
    source = `node_modules/${name}/${licenseFile}`;
  } else if (fs.existsSync(notice)) {
    text = fs.readFileSync(notice, 'utf8');
    source = `notices/${file}`;
    // Notices start with "Package: name@version ..." and "SPDX-License-Identifier: ...".
    const pkgLine = /^Package: (\S+)/m.exec(text);
    const spdxLine = /^SPDX-License-Identifier: (.+)$/m.exec(text);
    if (!pkg && pkgLine) version = `${pkgLine[1].slice(pkgLine[1].lastIndexOf('@') + 1)} (notice)`;
    if (!spdx && spdxLine) spdx = spdxLine[1].trim();
  } else if (spdx) {
    text = [
      `${name}@${version} is distributed under the ${spdx} license, as declared in its`,
      'package.json; the npm package ships no separate license file.',
      pkg.author ? `Author: ${personName(pkg.author)}` : '',
      pkg.repository ? `Repository: ${typeof pkg.repository === 'string' ? pkg.repository : pkg.repository.url}` : '',
      pkg.homepage ? `Homepage: ${pkg.homepage}` : '',
      '',
    ].filter((l, i, a) => l !== '' || i === a.length - 1).join('\n');
    source = 'package.json';
  } else {
    problems.push(name);
    continue;
  }
  fs.writeFileSync(path.join(outDir, file), text.endsWith('\n') ? text : `${text}\n`);
  index.push([name, version, spdx || '-', file, source]);
}

fs.copyFileSync(path.join(noticesDir, 'fonts.txt'), path.join(outDir, 'fonts.txt'));
index.push(['Roboto, Fira Code (fonts in graphiql.min.css)', '-', 'Apache-2.0, OFL-1.1', 'fonts.txt', 'notices/fonts.txt']);

if (problems.length > 0) {
  console.error(`no license found for bundled package(s): ${problems.join(', ')}`);
  console.error(`add their license texts as ${path.relative(process.cwd(), noticesDir)}/<name>.txt`);
  process.exit(1);
}

const widths = [0, 1, 2, 3].map((c) => Math.max(...index.map((r) => r[c].length)));
const lines = index.map((r) => r.slice(0, 4).map((v, c) => (c < 3 ? v.padEnd(widths[c]) : v)).join('  ').trimEnd());
fs.writeFileSync(path.join(outDir, 'INDEX.txt'), [
  'Third-party software in the berth GraphiQL assets',
  '',
  'graphiql.min.js, graphiql.min.css, react.production.min.js and',
  'react-dom.production.min.js are unmodified npm distribution files (only',
  'their sourceMappingURL comment is removed). The packages below are the ones',
  'bundled into them; versions are those pinned by web/graphiql/package-lock.json',
  '(the upstream graphiql.min.js may embed slightly different patch versions of',
  'its dependencies). Each file holds that package\'s license text. "(notice)":',
  'bundled upstream but not installed here; its text is kept in web/graphiql/notices/.',
  '',
  ...lines,
  '',
].join('\n'));

console.log(`licenses: ${index.length} entries written to ${outDir}`);
