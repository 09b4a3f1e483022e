/**
 * The time check judges expiry at. For tests only: IMAGETRUST_TEST_NOW (an
 * ISO 8601 time) stands in for the clock, so a test can see an until pass
 * after apply without waiting for it. Nothing else reads it.
 */
export function checkTime(): Date {
  const fake = process.env.IMAGETRUST_TEST_NOW
  if (fake === undefined || fake === '') return new Date()
  const at = new Date(fake)
  if (Number.isNaN(at.getTime())) throw new Error(`IMAGETRUST_TEST_NOW=${fake} is not a time`)
  return at
}
