-- Revenue by shift, day and hour (выручка по часам), kept as documents come and go, so that
-- revenue-watch and the report read a few thousand sums instead of every document of five
-- days.
--
-- Invariant: for every (workshiftid, day, hour), amount = Σ total of the shift's closed sale
-- documents − Σ total of its closed return documents whose time_end falls on that day and in
-- that hour (no row: zero). tests/common checks it against `document` after loads, re-sent
-- files, trims, replays and SIGKILLed runs.
--
-- Kept by the writers of documents, in the transaction that writes them: load-sales (and
-- its replay, the same path) adds the sums of each batch it copies in and subtracts those of
-- the documents a re-sent file replaces (delete ... returning); trim-db deletes whole
-- shifts, whose sums go by cascade. (Statement triggers with transition tables did the same
-- and cost load-sales 15 % on two cores.) Documents are never updated in place: an update
-- of their money, time or shift is refused, so a future writer cannot silently break the
-- sums. A DBA who changes documents by hand runs revenue_hour_rebuild() (below).
create table revenue_hour (
    workshiftid bigint not null references workshift on delete cascade,
    day         date not null,
    hour        smallint not null check (hour between 0 and 23),
    amount      numeric(15,2) not null,
    primary key (workshiftid, day, hour)
);
-- revenue-watch and the report read a few days at a time.
create index revenue_hour_day_idx on revenue_hour (day);

create function revenue_hour_no_update() returns trigger language plpgsql as $$
begin
    raise exception 'documents are replaced (delete + insert), never updated: revenue_hour would go wrong';
end $$;
create trigger document_revenue_no_update before update of workshiftid, doctype, time_end, total on document
    for each row execute function revenue_hour_no_update();

-- The sums made anew from the documents: what is already there when this migration runs,
-- and the repair after documents were changed by hand (`select revenue_hour_rebuild();`).
create function revenue_hour_rebuild() returns void language sql as $$
    delete from revenue_hour;
    insert into revenue_hour (workshiftid, day, hour, amount)
    select workshiftid, time_end::date, extract(hour from time_end)::smallint,
           sum(case doctype when 'sale' then total else -total end)
      from document
     where doctype in ('sale', 'return') and time_end is not null
     group by 1, 2, 3;
$$;
select revenue_hour_rebuild();
analyze revenue_hour;
