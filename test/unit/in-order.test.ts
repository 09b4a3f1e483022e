/**
 * Reads started at once fail as if awaited one by one: the error is the
 * first by position, not the first in time, and a loop that would have
 * stopped never sees what comes after.
 */
import assert from 'node:assert/strict'
import {setTimeout as sleep} from 'node:timers/promises'
import {describe, it} from 'node:test'

import {allInOrder, upToFirst} from '../../src/lib/in-order.ts'

const later = async <T>(ms: number, value: T) => {
  await sleep(ms)
  return value
}

const failLater = async (ms: number, message: string) => {
  await sleep(ms)
  throw new Error(message)
}

describe('reads in order', () => {
  it('gives every value, in position order', async () => {
    assert.deepEqual(await allInOrder([later(20, 'a'), later(1, 2), Promise.resolve(null)]), ['a', 2, null])
  })

  it('throws the first failure by position, though a later one failed sooner', async () => {
    await assert.rejects(allInOrder([later(5, 'a'), failLater(30, 'second'), failLater(1, 'third')]), /second/)
  })

  it('stops at the first value found: what comes after it, failed or not, is not looked at', async () => {
    assert.deepEqual(await upToFirst([later(10, undefined), later(1, 'found'), failLater(1, 'never seen')], (v) => v !== undefined), [undefined, 'found'])
    await assert.rejects(upToFirst([failLater(10, 'before'), later(1, 'found')], (v) => v !== undefined), /before/)
    assert.deepEqual(await upToFirst([later(1, undefined), later(1, undefined)], (v) => v !== undefined), [undefined, undefined])
  })
})
