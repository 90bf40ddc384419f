-- csjobs status (shared/spec/monitoring.md): working hours, and the indexes its checks use.

-- Working hours of a shop (часы работы). One row per open weekday (ISO: 1 = Monday);
-- closes <= opens means open past midnight. No row for a weekday: closed that day. No row at
-- all for a shop: open around the clock.
create table shop_hours (
    shopcode int not null references shop,
    weekday  smallint not null check (weekday between 1 and 7),
    opens    time not null,
    closes   time not null,
    primary key (shopcode, weekday)
);

-- "Latest sale loaded per cash": one index probe per register, however long the load log.
create index load_log_cash_last_sale_idx on load_log (cashcode, last_sale_at desc)
    where disposition = 'processed' and last_sale_at is not null;

-- "A run that is still going or was killed": only unfinished runs are in it.
create index job_run_unfinished_idx on job_run (job, started_at desc) where finished_at is null;
