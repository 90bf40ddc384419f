-- Exactly-once bookkeeping of the transfer, in the bonus DB itself: a staged row is claimed
-- here in the same transaction that applies it, so "applied" and "claimed" can never
-- disagree, and a second claim of the same row finds the first one and applies nothing.
create table transfer_applied (
    source     text not null,       -- staging table name
    staged_id  bigint not null,     -- its id there
    applied_at timestamptz not null default now(),
    primary key (source, staged_id)
);
create index transfer_applied_at_idx on transfer_applied (applied_at);

-- The staged id of the value a card holds: a row staged earlier but committed later never
-- overwrites a newer one (for one card, rows apply in id order; the newest wins).
alter table pincode        add column staged_id bigint null;
alter table cardaccounting add column staged_id bigint null;
