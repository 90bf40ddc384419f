-- The transfer's done log (журнал переданных строк), replacing the per-row `transferred_at`
-- update: marking a staged row cost a new heap tuple and index entries per row (the column
-- is in the pending index's predicate, so the update could never be HOT). Now a batch whose
-- effect committed in the bonus DB is recorded here as ONE row, and a per-table watermark
-- says "every row with an id up to here is done or will never exist".
--
-- A staged row is pending (not yet transferred) when
--   its id is above its table's watermark, no done row holds its id, and transferred_at is
--   null (rows marked before this migration, and rows the bonus DB refused, keep
--   transferred_at/transfer_error).
-- The view transfer_pending says exactly that; ARCHITECTURE.md has why it is exactly once.

create table transfer_done (
    staging_table text not null,                 -- accountpincodetemp, changeaccountbalancetemp, changecardaccounttemp
    first_id      bigint not null,
    last_id       bigint not null,
    ids           int8multirange not null,       -- the staged ids done, as runs of consecutive ids
    done_at       timestamptz not null default now(),
    -- The virtual transaction ids of this database's transactions open when the row was
    -- written. Once all have ended, no row with an id up to last_id can still appear
    -- (ids are handed out in order, cache 1): the watermark may then pass the holes.
    wait_for      text[] not null,
    check (first_id <= last_id)
);
create index transfer_done_table_last_idx on transfer_done (staging_table, last_id);
create index transfer_done_done_at_idx on transfer_done (done_at);

create table transfer_watermark (
    staging_table text primary key,
    last_id       bigint not null default 0,
    advanced_at   timestamptz
);
insert into transfer_watermark (staging_table)
values ('accountpincodetemp'), ('changeaccountbalancetemp'), ('changecardaccounttemp');

-- The rows waiting for transfer, for status, --dry-run and the DBA: one definition for the
-- three tables. The done runs above the watermark are merged once (few: one per batch at
-- most, while a transaction stays open); the rows are read from the watermark up by the
-- primary key.
create function transfer_pending_of(staging_table text)
returns table (id bigint, created_at timestamptz)
language plpgsql stable as $$
declare
    w bigint := coalesce((select t.last_id from transfer_watermark t where t.staging_table = $1), 0);
    done int8multirange := coalesce((select range_agg(d.ids) from transfer_done d
                                      where d.staging_table = $1 and d.last_id > w), '{}');
begin
    return query execute format(
        'select s.id, s.created_at from %I s where s.id > $1 and s.transferred_at is null and not s.id <@ $2',
        staging_table) using w, done;
end $$;

create view transfer_pending as
select 'accountpincodetemp'::text as staging_table, p.id, p.created_at from transfer_pending_of('accountpincodetemp') p
union all
select 'changeaccountbalancetemp', p.id, p.created_at from transfer_pending_of('changeaccountbalancetemp') p
union all
select 'changecardaccounttemp', p.id, p.created_at from transfer_pending_of('changecardaccounttemp') p;

-- Every row is now "transferred_at is null" (only refused rows get it), so the partial
-- pending indexes would hold the whole table: the primary key serves the reads.
drop index accountpincodetemp_pending_idx;
drop index changeaccountbalancetemp_pending_idx;
drop index changecardaccounttemp_pending_idx;
