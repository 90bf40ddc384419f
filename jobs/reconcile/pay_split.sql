-- The one definition of cash and non-cash (rules.md §6) the per-shift and per-day reports
-- share: money taken is amount − change; sales and returns split by payment type, cash in
-- and out in cash only. Spliced into their `pay` CTE in place of {PAY_SPLIT}.
sum(p.amount - p.change) filter (where docs.doctype = 'sale' and p.paytype = 'cash') as sales_cash,
sum(p.amount - p.change) filter (where docs.doctype = 'sale' and p.paytype <> 'cash') as sales_noncash,
sum(p.amount - p.change) filter (where docs.doctype = 'return' and p.paytype = 'cash') as returns_cash,
sum(p.amount - p.change) filter (where docs.doctype = 'return' and p.paytype <> 'cash') as returns_noncash,
sum(p.amount - p.change) filter (where docs.doctype = 'cash_in' and p.paytype = 'cash') as cash_in,
sum(p.amount - p.change) filter (where docs.doctype = 'cash_out' and p.paytype = 'cash') as cash_out
