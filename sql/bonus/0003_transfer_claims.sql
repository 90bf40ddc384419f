-- Claims per batch instead of per row. A row per staged row in transfer_applied cost a heap
-- tuple and two index entries for every row transferred (about a third of the bonus side's
-- work); a claim is now one row per applied batch holding the staged ids it applied. The
-- guarantee is unchanged: a batch's claim commits in the same transaction as its effect,
-- and a batch applies only the ids no claim of its source holds.
--
-- Finding the claims that may hold an id of a batch [lo, hi]: those with last_id >= lo and
-- first_id <= hi. In steady state the batch starts above every claim and the index answers
-- "none" at once; a late-committed row with a low id makes the run look at the few claims
-- made since that id.
create table transfer_claim (
    source_id  int not null,                       -- transfer_source
    first_id   bigint not null,
    last_id    bigint not null,
    ids        bigint[] not null,                  -- the staged ids applied, ascending
    applied_at timestamptz not null default now(),
    check (first_id <= last_id)
);
create index transfer_claim_source_last_idx on transfer_claim (source_id, last_id);
create index transfer_claim_applied_at_idx on transfer_claim (applied_at);

-- Claims made before this migration keep protecting their rows.
insert into transfer_claim (source_id, first_id, last_id, ids, applied_at)
select source_id, min(staged_id), max(staged_id), array_agg(staged_id order by staged_id), max(applied_at)
  from transfer_applied group by source_id;
drop table transfer_applied;
