-- export-astu lists the closed shifts never exported; this stays small however old the DB.
create index workshift_unexported_idx on workshift (workshiftid)
    where astu_exported_at is null and time_end is not null;
-- reconcile --shop N finds a shop's shifts without scanning every shift.
create index workshift_shop_idx on workshift (shopcode, time_beg);
