import {ImagetrustError} from './errors.js'

/** Standard input, for `key add NAME -`: at most `maxBytes` (a key: 1 MiB), so `< /dev/zero` fails fast. */
export async function readStdin(maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of process.stdin) {
    length += (chunk as Buffer).length
    if (length > maxBytes) {
      process.stdin.destroy()
      throw new ImagetrustError(`standard input holds more than ${maxBytes >= 1024 * 1024 ? `${maxBytes / (1024 * 1024)} MiB` : `${maxBytes} bytes`}, the limit for a key`)
    }

    chunks.push(chunk as Buffer)
  }

  return Buffer.concat(chunks)
}
