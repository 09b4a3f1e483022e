/**
 * Reads that do not depend on each other, started at once so that one's file
 * I/O runs while another parses, yet failing as if awaited one by one: the
 * error thrown is the first by position, not the first in time.
 */
type Values<T extends readonly unknown[]> = {-readonly [K in keyof T]: Awaited<T[K]>}

/** Every value, or the error of the first promise (by position) that failed. */
export async function allInOrder<T extends readonly unknown[] | []>(pending: T): Promise<Values<T>> {
  return (await upToFirst(pending as readonly unknown[], () => false)) as Values<T>
}

/**
 * The values up to and including the first one `found` accepts, as a loop
 * that stops there would see them: a failure before it is thrown, one after
 * it is never looked at.
 */
export async function upToFirst<T>(pending: ReadonlyArray<T | Promise<T>>, found: (value: T) => boolean): Promise<T[]> {
  const values: T[] = []
  for (const result of await Promise.allSettled(pending)) {
    if (result.status === 'rejected') throw result.reason
    values.push(result.value)
    if (found(result.value)) break
  }

  return values
}
