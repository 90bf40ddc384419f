-- Exactly-once bookkeeping of the transfer, in the bonus DB itself: a staged row is claimed
-- here in the same transaction that applies it, so "applied" and "claimed" can never
-- disagree, and a second claim of the same row finds the first one and applies nothing.
--
-- A source is one staging table of one cash server (csjobs_instance.id there): several
-- cash servers may feed this bonus DB and their staged ids overlap.
create table transfer_source (
    source_id     int generated always as identity primary key,
    cashserver_id uuid not null,
    staging_table text not null,
    unique (cashserver_id, staging_table)
);

create table transfer_applied (
    source_id  int not null,        -- transfer_source
    staged_id  bigint not null,     -- the staged row's id in its table
    applied_at timestamptz not null default now(),
    primary key (source_id, staged_id)
);
create index transfer_applied_at_idx on transfer_applied (applied_at);

-- The staged id of the value a card holds: a row staged earlier but committed later never
-- overwrites a newer one (for one card, rows apply in id order; the newest wins).
alter table pincode        add column staged_id bigint null;
alter table cardaccounting add column staged_id bigint null;
