import {createHash} from 'node:crypto'
import {lstat, readdir, readFile, readlink} from 'node:fs/promises'
import path from 'node:path'

/** Every file below dir with its mode and content hash: compare before/after to prove nothing changed. */
export async function hashTree(dir: string, options: {exclude?: RegExp} = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  async function walk(current: string): Promise<void> {
    const entries = await readdir(current, {withFileTypes: true}).catch(() => [])
    for (const entry of entries) {
      const full = path.join(current, entry.name)
      const rel = path.relative(dir, full)
      if (options.exclude?.test(rel)) continue
      const info = await lstat(full)
      if (entry.isDirectory()) await walk(full)
      else if (entry.isSymbolicLink()) out[rel] = `link:${await readlink(full)}`
      else out[rel] = `${(info.mode & 0o7777).toString(8)}:${createHash('sha256').update(await readFile(full)).digest('hex')}`
    }
  }

  await walk(dir)
  return out
}
