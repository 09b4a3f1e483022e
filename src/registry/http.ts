import {type BodyLimit, type Budget, MiB} from './limits.js'

/**
 * GETs to registries and lookasides that a hostile server cannot stretch:
 * every fetch and body read ends at the command's deadline, and every body at
 * containers/image's limit for its kind. Either ending is an unreachable
 * server (inconclusive), never a verdict.
 */
export class RegistryUnreachable extends Error {}

/** A body over containers/image's limit: the engine stops reading it too, and the pull fails. */
export class BodyTooLarge extends RegistryUnreachable {}

const size = (bytes: number) => (bytes >= MiB ? `${bytes / MiB} MiB` : `${bytes} bytes`)

function failure(error: unknown, source: string, url: string, budget: Budget, reading = false): RegistryUnreachable {
  if (budget.signal.aborted) return new RegistryUnreachable(`${source} did not finish ${reading ? 'sending' : 'answering'} ${url} within the ${budget.seconds} s deadline (--timeout)`)
  const e = error as Error & {cause?: Error}
  return new RegistryUnreachable(`${source} is unreachable: ${url}: ${reading ? 'the body broke off: ' : ''}${e.cause?.message ?? e.message}`)
}

/** A GET within the budget; `source` names the server in errors ("the lookaside", "the registry HOST"). */
export async function httpGet(url: string | URL, headers: Record<string, string>, budget: Budget, source: string): Promise<Response> {
  try {
    return await fetch(url, {headers, signal: budget.signal})
  } catch (error) {
    throw failure(error, source, String(url), budget)
  }
}

/** Lets the connection go without reading what is left of the body. */
export async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined)
}

function tooLarge(what: string, url: string, limit: BodyLimit, seen: string): BodyTooLarge {
  return new BodyTooLarge(`${what} from ${url} is larger than ${size(limit.bytes)} (${seen}), containers/image's limit (${limit.name}): refused without reading it further`)
}

/** The whole body, or BodyTooLarge as soon as it passes the limit, or RegistryUnreachable at the deadline. */
export async function readBody(response: Response, limit: BodyLimit, what: string, budget: Budget, source: string): Promise<Uint8Array> {
  const url = response.url
  const declared = Number(response.headers.get('content-length') ?? Number.NaN)
  if (declared > limit.bytes) {
    await discardBody(response)
    throw tooLarge(what, url, limit, `Content-Length ${declared}`)
  }

  const chunks: Uint8Array[] = []
  let total = 0
  const reader = response.body?.getReader()
  try {
    for (;;) {
      const next = await reader?.read()
      if (!next || next.done) break
      total += next.value.length
      if (total > limit.bytes) {
        await reader!.cancel().catch(() => undefined)
        throw tooLarge(what, url, limit, `more than ${total} bytes sent`)
      }

      chunks.push(next.value)
    }
  } catch (error) {
    if (error instanceof RegistryUnreachable) throw error
    throw failure(error, source, url, budget, true)
  }

  return new Uint8Array(Buffer.concat(chunks))
}
