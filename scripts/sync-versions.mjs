// Keeps every version of the project equal to package.json's: the platform
// packages under npm/ (the packed main package depends on each at its own
// version, see pack-all.mjs) and the Rust workspace (whose version the addon
// reports). `npm version <v>` runs it; `--check` only reports differences
// and exits 1 if there are any.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = process.argv.includes('--root') ? process.argv[process.argv.indexOf('--root') + 1] : join(dirname(fileURLToPath(import.meta.url)), '..')
const check = process.argv.includes('--check')
const read = (f) => JSON.parse(readFileSync(join(root, f), 'utf8'))
const write = (f, data) => writeFileSync(join(root, f), JSON.stringify(data, null, 2) + '\n')

const main = read('package.json')
const version = main.version
const found = []

for (const dir of readdirSync(join(root, 'npm'))) {
  const file = join('npm', dir, 'package.json')
  const pkg = read(file)
  found.push([file, pkg.version])
  if (!check && pkg.version !== version) write(file, { ...pkg, version })
}

const cargo = readFileSync(join(root, 'Cargo.toml'), 'utf8')
const section = /(\[workspace\.package\][^[]*?\nversion\s*=\s*")([^"]+)(")/
const m = section.exec(cargo)
if (!m) throw new Error('Cargo.toml: no version in [workspace.package]')
found.push(['Cargo.toml [workspace.package] version', m[2]])
if (!check && m[2] !== version) writeFileSync(join(root, 'Cargo.toml'), cargo.replace(section, `$1${version}$3`))

const wrong = found.filter(([, v]) => v !== version)
if (check) {
  for (const [where, v] of wrong) console.error(`${where} is ${v ?? 'missing'}, package.json's version is ${version}`)
  process.exit(wrong.length ? 1 : 0)
}
for (const [where, v] of wrong) console.log(`${where}: ${v ?? 'missing'} -> ${version}`)
