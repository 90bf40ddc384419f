-- Reconciliation per shift of one cash (сверка продаж по сменам), rules.md §6.
-- $1 cashcode, $2 first day, $3 last day (both included, null = open-ended; a shift's day is
-- the day it opened, or closed when its open time is unknown).
-- Only closed documents count. Cash = payment type 'cash' (amount - change); non-cash = the
-- other types. Money comes out in kopecks (bigint, exact); the job derives revenue and drawer.
with s as (
    select w.workshiftid, w.shiftnum, w.time_beg, w.time_end,
           w.astu_exported_at is not null as exported
    from workshift w
    where w.cashcode = $1::int
      and ($2::date is null or coalesce(w.time_beg, w.time_end) >= $2::date)
      and ($3::date is null or coalesce(w.time_beg, w.time_end) < $3::date + 1)
),
docs as (
    select d.workshiftid, d.documentid, d.doctype
    from document d
    join s on s.workshiftid = d.workshiftid
    where d.time_end is not null
),
checks as (
    select workshiftid, count(*) filter (where doctype in ('sale', 'return')) as checks
    from docs
    group by workshiftid
),
pay as (
    select docs.workshiftid,
           {PAY_SPLIT}
    from docs
    join payment p on p.documentid = docs.documentid
    group by docs.workshiftid
)
select s.workshiftid, s.shiftnum, s.time_beg, s.time_end,
       coalesce(checks.checks, 0)::bigint as checks,
       coalesce(pay.sales_cash * 100, 0)::bigint as sales_cash,
       coalesce(pay.sales_noncash * 100, 0)::bigint as sales_noncash,
       coalesce(pay.returns_cash * 100, 0)::bigint as returns_cash,
       coalesce(pay.returns_noncash * 100, 0)::bigint as returns_noncash,
       coalesce(pay.cash_in * 100, 0)::bigint as cash_in,
       coalesce(pay.cash_out * 100, 0)::bigint as cash_out,
       s.exported
from s
left join checks on checks.workshiftid = s.workshiftid
left join pay on pay.workshiftid = s.workshiftid
order by s.time_beg nulls last, s.workshiftid
