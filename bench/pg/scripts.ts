/**
 * pgbench scripts for the raw-SQL baselines. They run the store's own statements (from
 * src/postgres/statements.ts and the `append` function), with pgbench variables in place of
 * the bind parameters. Each client works on streams of its own, as each benchmark fiber does,
 * so neither side measures conflicts.
 *
 * A pgbench script cannot carry a result row to the next statement except through `\gset`,
 * so the baselines wrap the stream read in a count that yields the versions: the database
 * does the same scan, but the rows are not shipped to the client.
 */
import * as Statements from "../../src/postgres/statements.ts"

const metadata = `'{"correlationId":"bench","causationId":"bench","custom":{}}'::jsonb`

const accountId = (variable: string) => `('pgb-acct-' || (:${variable})::text)`

/**
 * Opens and funds the baseline's accounts (2 events each, like OpenAccount + Deposit), one
 * transaction per account: the append refuses to run in a transaction that already wrote.
 */
export const seedBaselineAccounts = (schema: string, clients: number, perClient: number): string =>
  `do $$
   declare a text;
   begin
     for a in select 'pgb-acct-' || n from generate_series(0, ${clients * perClient - 1}) as n loop
       perform ${schema}.append(array[a], array[0]::bigint[], array[gen_random_uuid(), gen_random_uuid()], array[a, a],
         array['AccountOpened', 'MoneyDeposited'], array[1, 1],
         array['{"owner":"bench"}'::jsonb, '{"amount":1000000000}'::jsonb], array[${metadata}, ${metadata}], now());
       commit;
     end loop;
   end $$`

/** Appends `batch` events to the client's own stream in one call. */
export const batchAppend = (schema: string, batch: number): string => {
  const stream = `('pgb-bulk-' || (:client_id)::text)`
  return `select o_tx_id from ${schema}.append(array[${stream}], array[-1]::bigint[],
  (select array_agg(gen_random_uuid()) from generate_series(1, ${batch})),
  array_fill(${stream}, array[${batch}]), array_fill('Ticked'::text, array[${batch}]), array_fill(1, array[${batch}]),
  array_fill('{"_tag":"Ticked","n":1}'::jsonb, array[${batch}]), array_fill(${metadata}, array[${batch}]), now());
`.replaceAll("\n", " ") + "\n"
}

/** Reads one page of the global order after a random existing event. */
export const catchUpPage = (schema: string, maxPosition: number, pageSize: number): string =>
  `\\set p random(1, ${Math.max(1, maxPosition - pageSize)})
select tx_id::text as atx, position as apos from ${schema}.events where position >= :p order by position limit 1 \\gset
${
    Statements.page(schema, "").replace("$1::xid8", "(:atx)::xid8").replace("$2::bigint", "(:apos)::bigint").replace(
      "limit $3",
      `limit ${pageSize}`
    ).replaceAll("\n", " ")
  };
`

/**
 * The store's read of a boundary, as pgbench can run it: pgbench keeps values only from a
 * one-row result (`\gset`), so the rows are folded into one — every column rendered as text
 * and shipped, as the store's own read makes the server do — beside each stream's version.
 */
const readVersions = (schema: string, variables: ReadonlyArray<string>): string => {
  const ids = variables.map(accountId)
  const read = Statements.readStreams(schema).replace("$1::text[]", `array[${ids.join(", ")}]::text[]`)
  const counts = variables.map((v, i) => `count(*) filter (where r.stream_id = ${ids[i]}) as v_${v}`)
  const rows = `string_agg(concat_ws(',', r.tx_id, r.position, r.event_id, r.stream_id, r.stream_version, r.type, ` +
    `r.schema_version, r.payload, r.metadata, r.recorded_at), ';') as rows`
  return `select ${counts.join(", ")}, ${rows} from (${read}) as r \\gset`
}

/** A transfer: read both accounts, append one event to each at the versions read. */
export const transfer = (schema: string, perClient: number): string =>
  `\\set i random(0, ${perClient - 1})
\\set k (:i + 1 + random(0, ${perClient - 2})) % ${perClient}
\\set from :client_id * ${perClient} + :i
\\set to :client_id * ${perClient} + :k
${readVersions(schema, ["from", "to"])}
select o_tx_id from ${schema}.append(array[${accountId("from")}, ${
    accountId("to")
  }], array[(:v_from)::bigint, (:v_to)::bigint], array[gen_random_uuid(), gen_random_uuid()], array[${
    accountId("from")
  }, ${accountId("to")}], array['TransferSent', 'TransferReceived'], array[1, 1], array[jsonb_build_object('to', ${
    accountId("to")
  }, 'amount', 1), jsonb_build_object('from', ${
    accountId("from")
  }, 'amount', 1)], array[${metadata}, ${metadata}], now());
`

/** A one-stream command: read the account, append a deposit at the version read. */
export const deposit = (schema: string, perClient: number): string =>
  `\\set i random(0, ${perClient - 1})
\\set acc :client_id * ${perClient} + :i
${readVersions(schema, ["acc"])}
select o_tx_id from ${schema}.append(array[${
    accountId("acc")
  }], array[(:v_acc)::bigint], array[gen_random_uuid()], array[${
    accountId("acc")
  }], array['MoneyDeposited'], array[1], array['{"amount":1}'::jsonb], array[${metadata}], now());
`

/**
 * The one-round-trip ceiling of a transfer: only the append, with "any version" (-1) instead of
 * versions read first. The same locks, inserts and commit as `transfer`, without the read: what
 * a command whose state the process already holds could reach at best.
 */
export const transferAppendOnly = (schema: string, perClient: number): string =>
  `\\set i random(0, ${perClient - 1})
\\set k (:i + 1 + random(0, ${perClient - 2})) % ${perClient}
\\set from :client_id * ${perClient} + :i
\\set to :client_id * ${perClient} + :k
select o_tx_id from ${schema}.append(array[${accountId("from")}, ${
    accountId("to")
  }], array[-1, -1]::bigint[], array[gen_random_uuid(), gen_random_uuid()], array[${accountId("from")}, ${
    accountId("to")
  }], array['TransferSent', 'TransferReceived'], array[1, 1], array[jsonb_build_object('to', ${
    accountId("to")
  }, 'amount', 1), jsonb_build_object('from', ${
    accountId("from")
  }, 'amount', 1)], array[${metadata}, ${metadata}], now());
`

/** The one-round-trip ceiling of a one-stream command: only the append of `deposit`. */
export const depositAppendOnly = (schema: string, perClient: number): string =>
  `\\set i random(0, ${perClient - 1})
\\set acc :client_id * ${perClient} + :i
select o_tx_id from ${schema}.append(array[${accountId("acc")}], array[-1]::bigint[], array[gen_random_uuid()], array[${
    accountId("acc")
  }], array['MoneyDeposited'], array[1], array['{"amount":1}'::jsonb], array[${metadata}], now());
`
