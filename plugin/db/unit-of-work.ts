// A change and its audit events as one transaction: either both are stored or neither is, so
// the audit log never misses a change that happened. Events reach the host's `onEvent` only
// after the commit (a hook told of a change that was then rolled back would be told a lie).
import type { Executor, TwoFactorDatabase } from './database.ts'
import type { EventRow, EventsStore, NewEvent } from './events-store.ts'

export interface Work {
  tx: Executor
  /** Stores an audit event in this transaction. */
  record (event: NewEvent & { at: Date }): Promise<EventRow>
}

export class UnitOfWork {
  constructor (private readonly db: TwoFactorDatabase, private readonly events: EventsStore) {}

  /** Runs `fn` in one transaction; returns its result and the events it recorded, once committed. */
  async run<T> (fn: (work: Work) => Promise<T>): Promise<{ result: T, events: EventRow[] }> {
    const recorded: EventRow[] = []
    const result = await this.db.transaction(async (tx) => {
      return await fn({
        tx,
        record: async (event) => {
          const row = await this.events.insertIn(tx, event)
          recorded.push(row)
          return row
        }
      })
    })
    return { result, events: recorded }
  }
}
