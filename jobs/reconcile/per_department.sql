-- Department report of one shift (отчёт по отделам), rules.md §6. $1 workshiftid.
-- Over the items of closed sale and return documents: quantity sold minus returned (in
-- thousandths), sales and returns as item totals (in kopecks); the job derives revenue.
select g.dept,
       ((coalesce(sum(g.quantity) filter (where d.doctype = 'sale'), 0)
         - coalesce(sum(g.quantity) filter (where d.doctype = 'return'), 0)) * 1000)::bigint as quantity,
       coalesce(sum(g.total) filter (where d.doctype = 'sale') * 100, 0)::bigint as sales,
       coalesce(sum(g.total) filter (where d.doctype = 'return') * 100, 0)::bigint as returns
from document d
join goodsitem g on g.documentid = d.documentid
where d.workshiftid = $1::bigint
  and d.time_end is not null
  and d.doctype in ('sale', 'return')
group by g.dept
order by g.dept
