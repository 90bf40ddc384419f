-- Reconciliation per shop and day (сверка продаж по магазину за день), rules.md §6.
-- $1 shopcode, $2 first day, $3 last day (both included, null = open-ended).
-- A document counts on the day of its time_end (a shift that spans midnight is split).
-- Only closed documents count. Cash = payment type 'cash' (amount - change); non-cash = the
-- other types. Money comes out in kopecks (bigint, exact); the job derives revenue and drawer.
with docs as (
    select d.documentid, d.doctype, d.time_end::date as day
    from workshift w
    join document d on d.workshiftid = w.workshiftid
    where w.shopcode = $1::int
      and d.time_end is not null
      and ($2::date is null or d.time_end >= $2::date)
      and ($3::date is null or d.time_end < $3::date + 1)
),
counts as (
    select day, count(*) as documents from docs group by day
),
pay as (
    select docs.day,
           {PAY_SPLIT}
    from docs
    join payment p on p.documentid = docs.documentid
    group by docs.day
)
select counts.day, counts.documents,
       coalesce(pay.sales_cash * 100, 0)::bigint as sales_cash,
       coalesce(pay.sales_noncash * 100, 0)::bigint as sales_noncash,
       coalesce(pay.returns_cash * 100, 0)::bigint as returns_cash,
       coalesce(pay.returns_noncash * 100, 0)::bigint as returns_noncash,
       coalesce(pay.cash_in * 100, 0)::bigint as cash_in,
       coalesce(pay.cash_out * 100, 0)::bigint as cash_out
from counts
left join pay on pay.day = counts.day
order by counts.day
