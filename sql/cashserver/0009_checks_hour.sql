-- The number of checks (чеки) beside the revenue of every shift, day and hour, so that
-- `status` and `report` show each register's checks and revenue of today and of a period from
-- the sums load-sales keeps, never from a scan of documents or items.
--
-- Invariant (0007's, extended): for every (workshiftid, day, hour), checks = the number of the
-- shift's closed sale and return documents whose time_end falls on that day and in that hour
-- (no row: zero). Kept by the same writers in the same statements as amount.
alter table revenue_hour add column checks integer not null default 0;

create or replace function revenue_hour_rebuild() returns void language sql as $$
    delete from revenue_hour;
    insert into revenue_hour (workshiftid, day, hour, amount, checks)
    select workshiftid, time_end::date, extract(hour from time_end)::smallint,
           sum(case doctype when 'sale' then total else -total end), count(*)
      from document
     where doctype in ('sale', 'return') and time_end is not null
     group by 1, 2, 3;
$$;
select revenue_hour_rebuild();
analyze revenue_hour;
