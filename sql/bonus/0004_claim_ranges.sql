-- A claim holds its staged ids as runs of consecutive ids (int8multirange) instead of an
-- array of every id: a batch of 10,000 ids was an 80 kB array compressed on every commit
-- (about 7 ms of the bonus transaction); in steady state it is now one range. The
-- guarantee is unchanged (see 0003): a claim commits with its effect, and a batch applies
-- only the ids no claim of its source holds.
alter table transfer_claim add column id_ranges int8multirange;
update transfer_claim set id_ranges = (select range_agg(int8range(x, x, '[]')) from unnest(ids) x);
alter table transfer_claim alter column id_ranges set not null;
alter table transfer_claim drop column ids;
