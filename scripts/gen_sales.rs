//! Generates a synthetic sales queue for the benchmarks, and the CSV of exactly the rows
//! loading it must produce (the `psql \copy` baseline of scripts/bench-load.sh).
//!
//!   cargo run --release --example gen_sales -- --profile large --out /tmp/q --csv /tmp/csv
//!
//! Profiles: `large` (shift-close files: 50 files × 2,000 checks × 5 items = 500,000 items)
//! and `small` (check-close files: 10,000 files of one check of 5 items). Data is never
//! committed: anyone regenerates it, identical for a seed.

use std::{
    collections::HashMap,
    fs,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use clap::{Parser, ValueEnum};
use csjobs::load_sales::format;
use synth::Layout;

#[path = "../tests/support/synth.rs"]
mod synth;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Profile {
    Large,
    Small,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_enum)]
    profile: Profile,
    /// Directory to write the sales files to (created)
    #[arg(long)]
    out: PathBuf,
    /// Directory for the baseline CSV files and dictionary.sql (created)
    #[arg(long)]
    csv: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scale the number of files (1.0 = the profile's size)
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Number of shops [default: the profile's]; fewer shops, bigger shops
    #[arg(long)]
    shops: Option<i32>,
}

fn layout(p: Profile, seed: u64, scale: f64) -> Layout {
    let n = |x: f64| ((x * scale).round() as i32).max(1);
    match p {
        Profile::Large => Layout {
            first_shop: 100,
            shops: 5,
            cashes_per_shop: 2,
            shifts_per_cash: n(5.0),
            fragments_per_shift: 1,
            docs_per_fragment: 2000,
            items_per_doc: 5,
            seed,
        },
        Profile::Small => Layout {
            first_shop: 100,
            shops: 10,
            cashes_per_shop: 10,
            shifts_per_cash: 1,
            fragments_per_shift: n(100.0) as usize,
            docs_per_fragment: 1,
            items_per_doc: 5,
            seed,
        },
    }
}

fn csv_opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut layout = layout(args.profile, args.seed, args.scale);
    if let Some(shops) = args.shops {
        layout.shops = shops;
    }
    fs::create_dir_all(&args.out)?;
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let mut csv = match &args.csv {
        Some(dir) => Some(Baseline::new(dir, &layout)?),
        None => None,
    };
    let (mut files, mut items) = (0u64, 0u64);
    for (i, (name, content)) in layout.files().enumerate() {
        let path = args.out.join(&name);
        fs::write(&path, &content)?;
        fs::File::options().write(true).open(&path)?.set_modified(base + Duration::from_secs(i as u64))?;
        if let Some(b) = csv.as_mut() {
            let f = format::parse(&content).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            items += f.item_count() as u64;
            b.add(&f)?;
        }
        files += 1;
    }
    if let Some(b) = csv {
        b.finish()?;
    }
    eprintln!("generated {files} files ({items} items) in {}", args.out.display());
    Ok(())
}

/// A `workshift` row of the baseline.
struct Shift {
    id: i64,
    shop: i32,
    time_beg: Option<String>,
    time_end: Option<String>,
}

/// The rows an uninterrupted load of the queue leaves, as CSV for `\copy`.
struct Baseline {
    shifts: HashMap<(i32, i32), Shift>,
    documents: BufWriter<fs::File>,
    items: BufWriter<fs::File>,
    payments: BufWriter<fs::File>,
    dir: PathBuf,
    next_doc: i64,
}

impl Baseline {
    fn new(dir: &Path, layout: &Layout) -> anyhow::Result<Baseline> {
        fs::create_dir_all(dir)?;
        fs::write(dir.join("dictionary.sql"), layout.dictionary_sql())?;
        let w = |n: &str| -> anyhow::Result<BufWriter<fs::File>> {
            Ok(BufWriter::new(fs::File::create(dir.join(n))?))
        };
        Ok(Baseline {
            shifts: HashMap::new(),
            documents: w("document.csv")?,
            items: w("goodsitem.csv")?,
            payments: w("payment.csv")?,
            dir: dir.to_path_buf(),
            next_doc: 1,
        })
    }

    fn add(&mut self, f: &format::SalesFile) -> anyhow::Result<()> {
        let next_id = self.shifts.len() as i64 + 1;
        let shift = self.shifts.entry((f.cash, f.shift.number)).or_insert(Shift {
            id: next_id,
            shop: f.shop,
            time_beg: f.shift.opened_at.map(|t| t.to_string()),
            time_end: None,
        });
        if let Some(end) = f.shift.closed_at {
            shift.time_end = Some(end.to_string());
        }
        let wid = shift.id;
        for d in &f.documents {
            let id = self.next_doc;
            self.next_doc += 1;
            writeln!(
                self.documents,
                "{id},{wid},{},{},{},{},{}",
                d.number,
                d.doctype.as_str(),
                d.opened_at,
                csv_opt(d.closed_at),
                d.total
            )?;
            for it in &d.items {
                writeln!(
                    self.items,
                    "{id},{},{},{},{},{},{},{},{}",
                    it.pos,
                    it.ware,
                    csv_opt(it.name.as_deref()),
                    it.dept,
                    it.quantity,
                    it.price,
                    it.discount,
                    it.sum
                )?;
            }
            for (n, p) in d.payments.iter().enumerate() {
                writeln!(self.payments, "{id},{},{},{},{}", n + 1, p.paytype, p.amount, p.change)?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.documents.flush()?;
        self.items.flush()?;
        self.payments.flush()?;
        let mut w = BufWriter::new(fs::File::create(self.dir.join("workshift.csv"))?);
        let mut shifts: Vec<_> = self.shifts.into_iter().collect();
        shifts.sort_by_key(|(_, s)| s.id);
        for ((cash, num), s) in shifts {
            let (id, shop) = (s.id, s.shop);
            let (beg, end) = (csv_opt(s.time_beg), csv_opt(s.time_end));
            writeln!(w, "{id},{cash},{shop},{num},{beg},{end},now")?;
        }
        w.flush()?;
        Ok(())
    }
}
