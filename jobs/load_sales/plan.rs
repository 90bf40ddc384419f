//! Which shift each sales file belongs to, and what a batch of files writes: the rules of
//! shared/spec/rules.md §1 as pure functions over the shift rows the database holds. No
//! I/O here; `apply` reads the rows, asks this module, and writes the answer.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{NaiveDateTime, TimeDelta};

use super::format::SalesFile;

/// Two open times closer than this are the same shift; exactly 48 hours apart is not.
pub const SAME_SHIFT_WINDOW: TimeDelta = TimeDelta::hours(48);

/// A shift (смена, `workshift`) that exists in the database or is created by this batch.
/// `Existing` sorts before `New`, and each by its number: the order is "older to newer".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShiftRef {
    Existing(i64),
    /// The k-th shift created by this plan; `apply` gives it its `workshiftid`.
    New(usize),
}

/// What the plan knows of one `workshift` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftRow {
    pub id: ShiftRef,
    pub time_beg: Option<NaiveDateTime>,
    pub time_end: Option<NaiveDateTime>,
}

/// The answer of [`choose_shift`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// A new `workshift` row with `time_beg` = the file's open time.
    New,
    /// Merge into `rows[index]`; `set_time_beg` when that row's null open time takes the
    /// file's.
    Merge { index: usize, set_time_beg: bool },
    /// Not loaded: the open time is null in the file and in the database.
    NullDates,
}

/// The duplicate-shift-number rules: `opened_at` is the file's shift open time `T`, `rows`
/// the existing rows `E` with the same cash and shift number.
pub fn choose_shift(opened_at: Option<NaiveDateTime>, rows: &[ShiftRow]) -> Choice {
    if rows.is_empty() {
        return Choice::New;
    }
    let newest_null = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.time_beg.is_none())
        .max_by_key(|(_, r)| r.id)
        .map(|(i, _)| i);
    match opened_at {
        None => match newest_null {
            Some(_) => Choice::NullDates,
            // Every row has an open time: the latest one (ties: the newest row).
            None => {
                let index = rows
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, r)| (r.time_beg, r.id))
                    .map(|(i, _)| i)
                    .expect("rows is not empty");
                Choice::Merge { index, set_time_beg: false }
            }
        },
        Some(t) => {
            // The closest row within 48 hours (ties: the newest row).
            let closest = rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.time_beg.map(|b| (i, (t - b).abs(), r.id)))
                .filter(|(_, d, _)| *d < SAME_SHIFT_WINDOW)
                .min_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)));
            match (closest, newest_null) {
                (Some((index, _, _)), _) => Choice::Merge { index, set_time_beg: false },
                (None, Some(index)) => Choice::Merge { index, set_time_beg: true },
                (None, None) => Choice::New,
            }
        }
    }
}

/// The dictionaries a file must agree with: known shops, and the shop of each known cash.
#[derive(Debug, Default, Clone)]
pub struct Dictionary {
    pub shops: HashSet<i32>,
    /// cashcode → shopcode.
    pub cashes: HashMap<i32, i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftAction {
    New,
    Merged,
}

impl ShiftAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ShiftAction::New => "new",
            ShiftAction::Merged => "merged",
        }
    }
}

/// Where one file goes, when the database accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFile {
    pub shift: ShiftRef,
    pub action: ShiftAction,
}

/// A shift this plan creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShift {
    pub cash: i32,
    pub shop: i32,
    pub shiftnum: i32,
    pub time_beg: Option<NaiveDateTime>,
    pub time_end: Option<NaiveDateTime>,
}

/// What changes on an existing shift (besides `loaded_at`, which every touch sets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShiftUpdate {
    pub time_beg: Option<NaiveDateTime>,
    pub time_end: Option<NaiveDateTime>,
}

/// A document to insert: the `doc`-th document of the batch's `file`-th file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocRef {
    pub file: usize,
    pub doc: usize,
    pub shift: ShiftRef,
}

/// Everything one batch writes.
#[derive(Debug, Default)]
pub struct BatchWrites {
    pub new_shifts: Vec<NewShift>,
    pub updates: BTreeMap<i64, ShiftUpdate>,
    /// Stored documents replaced whole: (workshiftid, docnum).
    pub deletes: Vec<(i64, i32)>,
    /// Documents to insert, in file order; a document superseded by a later file of the
    /// same batch is left out.
    pub documents: Vec<DocRef>,
}

/// Plans files one after another, each seeing the effect of the ones before it.
#[derive(Debug, Default)]
pub struct Planner {
    dict: Dictionary,
    known_shops: HashSet<i32>,
    known_cashes: HashSet<i32>,
    shifts: HashMap<(i32, i32), Vec<ShiftRow>>,
    new_count: usize,
    writes: BatchWrites,
    doc_slot: HashMap<(ShiftRef, i32), usize>,
    slots: Vec<Option<DocRef>>,
    deleted: HashSet<(i64, i32)>,
}

impl Planner {
    pub fn new() -> Planner {
        Planner::default()
    }

    /// The (cash, shift number) pairs, cash codes and shop codes of `files` whose rows the
    /// planner has not been given yet.
    pub fn missing<'a>(
        &self,
        files: impl IntoIterator<Item = &'a SalesFile>,
    ) -> (Vec<(i32, i32)>, Vec<i32>, Vec<i32>) {
        let (mut pairs, mut cashes, mut shops) = (Vec::new(), Vec::new(), Vec::new());
        let (mut seen_p, mut seen_c, mut seen_s) = (HashSet::new(), HashSet::new(), HashSet::new());
        for f in files {
            let key = (f.cash, f.shift.number);
            if !self.shifts.contains_key(&key) && seen_p.insert(key) {
                pairs.push(key);
            }
            if !self.known_cashes.contains(&f.cash) && seen_c.insert(f.cash) {
                cashes.push(f.cash);
            }
            if !self.known_shops.contains(&f.shop) && seen_s.insert(f.shop) {
                shops.push(f.shop);
            }
        }
        (pairs, cashes, shops)
    }

    /// Adds the database's rows (shifts, cashes, shops) for the keys [`Planner::missing`] named:
    /// every key asked for is known afterwards, also when the database has no row for it.
    pub fn add_db_rows(
        &mut self,
        asked: &(Vec<(i32, i32)>, Vec<i32>, Vec<i32>),
        rows: Vec<((i32, i32), ShiftRow)>,
        cashes: Vec<(i32, i32)>,
        shops: Vec<i32>,
    ) {
        for key in &asked.0 {
            self.shifts.entry(*key).or_default();
        }
        for (key, row) in rows {
            self.shifts.entry(key).or_default().push(row);
        }
        self.known_cashes.extend(asked.1.iter().copied());
        self.known_shops.extend(asked.2.iter().copied());
        self.dict.cashes.extend(cashes);
        self.dict.shops.extend(shops);
    }

    /// Plans the `file_index`-th file of the batch. `Err` is the reason the database would
    /// refuse it (the file goes to error/).
    pub fn plan_file(&mut self, file_index: usize, f: &SalesFile) -> Result<PlannedFile, String> {
        if !self.dict.shops.contains(&f.shop) {
            return Err(format!(
                "shop {} is not in the dictionary (table shop); add it, or correct the shop \
                 code in the register's settings, then run load-sales --retry-errors",
                f.shop
            ));
        }
        match self.dict.cashes.get(&f.cash) {
            None => {
                return Err(format!(
                    "cash {} is not in the dictionary (table cash); add it to shop {}, then run \
                     load-sales --retry-errors",
                    f.cash, f.shop
                ))
            }
            Some(&shop) if shop != f.shop => {
                return Err(format!(
                    "cash {} belongs to shop {shop} in the dictionary, but the file says shop {}; \
                     correct the register's settings or the table cash, then run load-sales \
                     --retry-errors",
                    f.cash, f.shop
                ))
            }
            Some(_) => {}
        }
        let key = (f.cash, f.shift.number);
        let first_new = self.first_new();
        let rows = self.shifts.entry(key).or_default();
        let (shift, action) = match choose_shift(f.shift.opened_at, rows) {
            Choice::NullDates => {
                return Err(format!(
                    "shift {} of cash {}: open date is NULL both in the file and in the database",
                    f.shift.number, f.cash
                ))
            }
            Choice::New => {
                let id = ShiftRef::New(self.new_count);
                self.new_count += 1;
                rows.push(ShiftRow { id, time_beg: f.shift.opened_at, time_end: f.shift.closed_at });
                self.writes.new_shifts.push(NewShift {
                    cash: f.cash,
                    shop: f.shop,
                    shiftnum: f.shift.number,
                    time_beg: f.shift.opened_at,
                    time_end: f.shift.closed_at,
                });
                (id, ShiftAction::New)
            }
            Choice::Merge { index, set_time_beg } => {
                let row = &mut rows[index];
                if set_time_beg {
                    row.time_beg = f.shift.opened_at;
                }
                if f.shift.closed_at.is_some() {
                    row.time_end = f.shift.closed_at;
                }
                let id = row.id;
                match id {
                    ShiftRef::Existing(wid) => {
                        let u = self.writes.updates.entry(wid).or_default();
                        if set_time_beg {
                            u.time_beg = f.shift.opened_at;
                        }
                        if f.shift.closed_at.is_some() {
                            u.time_end = f.shift.closed_at;
                        }
                    }
                    ShiftRef::New(k) => {
                        // Only rows created by this batch's planner are in new_shifts; a
                        // dry run keeps planning past earlier batches.
                        let batch_index = k.checked_sub(first_new);
                        if let Some(n) = batch_index.and_then(|i| self.writes.new_shifts.get_mut(i)) {
                            if set_time_beg {
                                n.time_beg = f.shift.opened_at;
                            }
                            if f.shift.closed_at.is_some() {
                                n.time_end = f.shift.closed_at;
                            }
                        }
                    }
                }
                (id, ShiftAction::Merged)
            }
        };
        for (doc_index, d) in f.documents.iter().enumerate() {
            let doc = DocRef { file: file_index, doc: doc_index, shift };
            match self.doc_slot.get(&(shift, d.number)) {
                // A later fragment of the same document wins.
                Some(&slot) => self.slots[slot] = Some(doc),
                None => {
                    self.doc_slot.insert((shift, d.number), self.slots.len());
                    self.slots.push(Some(doc));
                    if let ShiftRef::Existing(wid) = shift {
                        if self.deleted.insert((wid, d.number)) {
                            self.writes.deletes.push((wid, d.number));
                        }
                    }
                }
            }
        }
        Ok(PlannedFile { shift, action })
    }

    fn first_new(&self) -> usize {
        self.new_count - self.writes.new_shifts.len()
    }

    /// Hands over what the files planned so far write, and starts a new batch. The shift
    /// rows stay known (a dry run plans on); a real run makes a new planner per batch,
    /// since after the commit the database is the truth.
    pub fn take_writes(&mut self) -> BatchWrites {
        let mut writes = std::mem::take(&mut self.writes);
        writes.documents = self.slots.drain(..).flatten().collect();
        self.doc_slot.clear();
        self.deleted.clear();
        writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(day: u32, hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap().and_hms_opt(hour, 0, 0).unwrap()
    }
    fn row(id: i64, beg: Option<NaiveDateTime>) -> ShiftRow {
        ShiftRow { id: ShiftRef::Existing(id), time_beg: beg, time_end: None }
    }

    #[test]
    fn no_existing_shift_gets_a_new_one() {
        assert_eq!(choose_shift(Some(t(20, 9)), &[]), Choice::New);
        assert_eq!(choose_shift(None, &[]), Choice::New);
    }

    #[test]
    fn null_open_time_in_file_and_database_is_refused() {
        let rows = [row(1, Some(t(1, 9))), row(2, None)];
        assert_eq!(choose_shift(None, &rows), Choice::NullDates);
    }

    #[test]
    fn open_time_within_48_hours_merges_into_the_closest_row() {
        let rows = [row(1, Some(t(19, 9))), row(2, Some(t(20, 20))), row(3, None)];
        assert_eq!(choose_shift(Some(t(20, 9)), &rows), Choice::Merge { index: 1, set_time_beg: false });
    }

    #[test]
    fn exactly_48_hours_apart_is_a_new_shift() {
        let rows = [row(1, Some(t(18, 9)))];
        assert_eq!(choose_shift(Some(t(20, 9)), &rows), Choice::New);
        let just_inside = t(20, 9) - TimeDelta::seconds(1);
        assert_eq!(choose_shift(Some(just_inside), &rows), Choice::Merge { index: 0, set_time_beg: false });
    }

    #[test]
    fn far_open_time_with_a_null_row_merges_into_the_newest_null_row() {
        let rows = [row(1, None), row(5, Some(t(1, 9))), row(3, None)];
        assert_eq!(choose_shift(Some(t(20, 9)), &rows), Choice::Merge { index: 2, set_time_beg: true });
    }

    #[test]
    fn null_open_time_merges_into_the_latest_dated_row() {
        let rows = [row(1, Some(t(20, 9))), row(2, Some(t(1, 9)))];
        assert_eq!(choose_shift(None, &rows), Choice::Merge { index: 0, set_time_beg: false });
    }

    fn file(cash: i32, num: i32, opened: Option<NaiveDateTime>, docs: &[i32]) -> SalesFile {
        use super::super::format::*;
        SalesFile {
            shop: 1,
            cash,
            source: Source::default(),
            shift: ShiftHeader { number: num, opened_at: opened, closed_at: None },
            documents: docs
                .iter()
                .map(|&n| Document {
                    number: n,
                    doctype: DocType::Sale,
                    opened_at: t(20, 9),
                    closed_at: None,
                    total: Default::default(),
                    items: vec![],
                    payments: vec![],
                })
                .collect(),
        }
    }

    fn planner_for(files: &[SalesFile], rows: Vec<((i32, i32), ShiftRow)>) -> Planner {
        let mut p = Planner::new();
        let asked = p.missing(files);
        p.add_db_rows(&asked, rows, vec![(17, 1)], vec![1]);
        p
    }

    #[test]
    fn later_file_of_the_same_batch_sees_the_shift_an_earlier_one_created() {
        let files = [file(17, 412, Some(t(20, 9)), &[1, 2]), file(17, 412, Some(t(20, 9)), &[2, 3])];
        let mut p = planner_for(&files, vec![]);
        assert_eq!(p.plan_file(0, &files[0]).unwrap().action, ShiftAction::New);
        let second = p.plan_file(1, &files[1]).unwrap();
        assert_eq!(second, PlannedFile { shift: ShiftRef::New(0), action: ShiftAction::Merged });
        let w = p.take_writes();
        assert_eq!(w.new_shifts.len(), 1);
        // Document 2 of the first file is superseded by the second file's.
        let docs: Vec<_> = w.documents.iter().map(|d| (d.file, d.doc)).collect();
        assert_eq!(docs, [(0, 0), (1, 0), (1, 1)]);
        assert!(w.deletes.is_empty());
    }

    #[test]
    fn merging_into_a_stored_shift_replaces_its_documents() {
        let files = [file(17, 412, Some(t(20, 10)), &[1, 2])];
        let mut p = planner_for(&files, vec![((17, 412), row(40, Some(t(20, 9))))]);
        assert_eq!(p.plan_file(0, &files[0]).unwrap().shift, ShiftRef::Existing(40));
        let w = p.take_writes();
        assert_eq!(w.deletes, [(40, 1), (40, 2)]);
        assert!(w.updates.contains_key(&40));
    }

    #[test]
    fn unknown_cash_and_cash_of_another_shop_are_refused_with_the_reason() {
        let mut f = file(99, 1, Some(t(20, 9)), &[]);
        let mut p = planner_for(std::slice::from_ref(&f), vec![]);
        assert!(p.plan_file(0, &f).unwrap_err().contains("cash 99 is not in the dictionary"));
        f.cash = 17;
        f.shop = 2;
        p.add_db_rows(&(vec![], vec![], vec![2]), vec![], vec![], vec![2]);
        assert!(p.plan_file(0, &f).unwrap_err().contains("belongs to shop 1"));
    }
}
