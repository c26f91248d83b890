// The public surface types (test/types/public-surface.ts) are checked by the compiler; this file
// loads them, so a broken assertion also fails here, and checks the runtime half of the same API.
import t from 'tap'
import { EVENT_TYPES, TwoFactorError } from '../../plugin/index.ts'
import { publicSurface } from './public-surface.ts'

t.test('the public surface types', async (t) => {
  const app = publicSurface()
  t.ok(EVENT_TYPES.includes('challenge.succeeded'))
  t.equal(new TwoFactorError('locked').statusCode, 423)
  await app.close()
})
