-- The ASTU auto export of load-sales, made crash safe (rules.md §5).
--   astu_export_due: set, in the transaction that loads the files, on every closed shift
--                    that a file of the batch closes or whose documents it changes: the
--                    auto export owes ASTU a file for it. Cleared in the transaction that
--                    sets astu_exported_at, once the file is safely written. A run killed
--                    between the two, or whose write failed, leaves it set, and the next
--                    load-sales (or export-astu) writes the file.
-- A new column with a constant default: no table rewrite, outside tools see nothing new.
alter table workshift add column astu_export_due boolean not null default false;
-- Only the shifts still owed a file are in this index: finding them stays cheap.
create index workshift_astu_due_idx on workshift (workshiftid) where astu_export_due;
