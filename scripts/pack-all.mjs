// npm run pack:all: builds the addon and the TypeScript, then writes the
// tarball of every package into artifacts/ (the platform packages first, as
// they are published first). The main package's tarball lists each platform
// package under optionalDependencies at the one version, as napi-rs's
// prepublish does; the repository's package.json does not, so that npm ci
// there needs no unpublished package. Prints each tarball's name and size.
import { execFileSync } from 'node:child_process'
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })

run(process.execPath, [join(root, 'scripts', 'sync-versions.mjs'), '--check'])
run('npm', ['run', '--silent', 'build'])
// The other platforms, cross-compiled (scripts/toolchain.sh says how).
run('bash', [join(root, 'scripts', 'build-native.sh'), 'aarch64-unknown-linux-gnu'])
const out = join(root, 'artifacts')
rmSync(out, { recursive: true, force: true })
mkdirSync(out)
const pack = (dir) => execFileSync('npm', ['pack', '--silent', '--pack-destination', out, dir], { cwd: root, encoding: 'utf8' }).trim()
const tarballs = []
const main = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
main.optionalDependencies = {}
for (const dir of readdirSync(join(root, 'npm'))) {
  const pkgDir = join(root, 'npm', dir)
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
  for (const file of pkg.files) copyFileSync(join(root, file), join(pkgDir, file))
  tarballs.push(pack(pkgDir))
  main.optionalDependencies[pkg.name] = pkg.version
}
const stage = join(out, '.stage')
for (const file of [...main.files, 'README.md', 'LICENSE']) cpSync(join(root, file), join(stage, file), { recursive: true })
writeFileSync(join(stage, 'package.json'), JSON.stringify(main, null, 2) + '\n')
tarballs.push(pack(stage))
rmSync(stage, { recursive: true, force: true })
for (const t of tarballs) console.log(`artifacts/${t}  ${(statSync(join(out, t)).size / 1e6).toFixed(1)} MB`)
