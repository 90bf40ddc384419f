-- Bookkeeping of the bonus transfer on the staging side. Outside systems keep inserting by
-- name; these nullable columns are invisible to them.
--   transferred_at: set once the row's effect is committed in the bonus DB (or it was
--                   refused there); rows with it null are what the next run takes.
--   transfer_error: why the bonus DB refused the row (it is then skipped, not retried).
alter table accountpincodetemp       add column transferred_at timestamptz null, add column transfer_error text null;
alter table changeaccountbalancetemp add column transferred_at timestamptz null, add column transfer_error text null;
alter table changecardaccounttemp    add column transferred_at timestamptz null, add column transfer_error text null;

-- Only the rows still to transfer are in these indexes: finding them stays cheap however
-- many rows were transferred before, and a row committed late with a low id is found too.
create index accountpincodetemp_pending_idx       on accountpincodetemp (id)       where transferred_at is null;
create index changeaccountbalancetemp_pending_idx on changeaccountbalancetemp (id) where transferred_at is null;
create index changecardaccounttemp_pending_idx    on changecardaccounttemp (id)    where transferred_at is null;

-- trim-db removes transferred rows past retention.
create index accountpincodetemp_transferred_idx       on accountpincodetemp (transferred_at)       where transferred_at is not null;
create index changeaccountbalancetemp_transferred_idx on changeaccountbalancetemp (transferred_at) where transferred_at is not null;
create index changecardaccounttemp_transferred_idx    on changecardaccounttemp (transferred_at)    where transferred_at is not null;

-- Who this cash server is, for the bonus DB's bookkeeping: several cash servers may feed
-- one bonus DB, and their staged ids overlap. Made once; a restored backup keeps it (its
-- staged ids are the same rows).
create table csjobs_instance (
    singleton boolean primary key default true check (singleton),
    id        uuid not null default gen_random_uuid()
);
insert into csjobs_instance default values;
