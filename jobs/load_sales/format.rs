//! The sales file format `csjobs-sales/1` (shared/spec/sales-file.md): reading a file from
//! the queue (gzip, size limit, content hash) and turning its bytes into a validated
//! [`SalesFile`] or a [`Broken`] verdict naming the rule and the JSON path of the first
//! offending value. This is the only module that knows the format.
//!
//! Two passes: serde checks the structure (missing fields, wrong JSON types) and reports
//! the path through `serde_path_to_error`; then [`validate`] checks ranges, decimals,
//! timestamps and the sums, walking the typed tree with explicit paths. Decimals are kept
//! as their JSON text (serde_json's `arbitrary_precision`) and parsed exactly: never
//! through binary floating point.

use std::{collections::HashSet, fmt, io::Read, path::Path};

use chrono::NaiveDateTime;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{de, Deserialize, Deserializer};
use sha2::{Digest, Sha256};

/// The only format this loader reads.
pub const FORMAT: &str = "csjobs-sales/1";

/// Does the queue hold this name as a sales file? Others are left where they are.
pub fn is_sales_file_name(name: &str) -> bool {
    (name.ends_with(".json") && name.len() > ".json".len())
        || (name.ends_with(".json.gz") && name.len() > ".json.gz".len())
}

// ---- the validated file ---------------------------------------------------------------

/// A sales file (файл продаж): one fragment of one shift of one cash register.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesFile {
    /// Shop code (код магазина), `shop.shopcode`.
    pub shop: i32,
    /// Cash register code (код кассы), `cash.cashcode`.
    pub cash: i32,
    pub source: Source,
    pub shift: ShiftHeader,
    pub documents: Vec<Document>,
}

impl SalesFile {
    pub fn item_count(&self) -> usize {
        self.documents.iter().map(|d| d.items.len()).sum()
    }
    /// The latest close time of a closed sale in this file (monitoring: last sale).
    pub fn last_sale_at(&self) -> Option<NaiveDateTime> {
        self.documents.iter().filter(|d| d.doctype == DocType::Sale).filter_map(|d| d.closed_at).max()
    }
}

/// Who sent the file; kept for monitoring only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub host: Option<String>,
    pub ip: Option<String>,
    pub software: Option<String>,
}

/// The shift (смена) as the register describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftHeader {
    /// Shift number as printed by the register (номер смены).
    pub number: i32,
    pub opened_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocType {
    /// Продажа.
    Sale,
    /// Возврат.
    Return,
    /// Внесение.
    CashIn,
    /// Выплата (изъятие).
    CashOut,
}

impl DocType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocType::Sale => "sale",
            DocType::Return => "return",
            DocType::CashIn => "cash_in",
            DocType::CashOut => "cash_out",
        }
    }
    fn parse(s: &str) -> Option<DocType> {
        Some(match s {
            "sale" => DocType::Sale,
            "return" => DocType::Return,
            "cash_in" => DocType::CashIn,
            "cash_out" => DocType::CashOut,
            _ => return None,
        })
    }
    pub fn has_goods(self) -> bool {
        matches!(self, DocType::Sale | DocType::Return)
    }
}

/// A document (документ, чек): a check or a cash operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Document number, unique within the shift (номер документа).
    pub number: i32,
    pub doctype: DocType,
    pub opened_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
    /// `document.total`: the sum of item sums for sale/return; the cash amount minus change
    /// for cash_in/cash_out.
    pub total: Decimal,
    pub items: Vec<Item>,
    pub payments: Vec<Payment>,
}

/// A goods item (товарная позиция) of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pos: i32,
    pub ware: String,
    pub name: Option<String>,
    /// Department (отдел).
    pub dept: i32,
    pub quantity: Decimal,
    pub price: Decimal,
    pub discount: Decimal,
    pub sum: Decimal,
}

/// A payment (оплата) of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub paytype: String,
    pub amount: Decimal,
    pub change: Decimal,
}

// ---- broken files -----------------------------------------------------------------------

/// Why a file is broken: the rule of sales-file.md ("When a file is broken", 1–9), the JSON
/// path of the first offending value (`.` for the whole file) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub rule: u8,
    pub path: String,
    pub message: String,
    /// The file's `shop` and `cash` when both could still be read as positive integers
    /// (e.g. a file broken by a wrong sum): the load log keeps them, so the broken file
    /// counts for its register (monitoring.md). Set by [`parse`].
    pub register: Option<(i32, i32)>,
}

impl Broken {
    /// The `rule` of a file the loader failed to read for a reason of its own (an internal
    /// error, sales-file.md "When a file is broken"): no rule of the format.
    pub const INTERNAL: u8 = 0;

    /// A file that reading failed on in a way of ours (a panic): broken with that reason.
    pub fn internal(message: impl Into<String>) -> Broken {
        Broken { rule: Broken::INTERNAL, path: ".".into(), message: clip(message.into()), register: None }
    }
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rule == Broken::INTERNAL {
            return write!(f, "internal error while reading: {}", self.message);
        }
        write!(f, "broken (rule {}) at {}: {}", self.rule, self.path, self.message)
    }
}

impl std::error::Error for Broken {}

fn broken(rule: u8, path: impl Into<String>, message: impl Into<String>) -> Broken {
    Broken { rule, path: clip(path.into()), message: clip(message.into()), register: None }
}

/// The longest message or path a verdict keeps, in characters. Messages quote the offending
/// value: a 250 MB string would make an 875 MB reason (escaped) in the load log, the error
/// list and the log line, past PostgreSQL's 1 GB message limit, and stop the run on every try.
const MAX_REASON_CHARS: usize = 300;

fn clip(s: String) -> String {
    match s.char_indices().nth(MAX_REASON_CHARS) {
        None => s,
        Some((at, _)) => format!("{}… ({} bytes in all)", &s[..at], s.len()),
    }
}

// ---- reading a file -----------------------------------------------------------------------

/// A file's bytes as read from the queue, with what the load log keeps about it.
#[derive(Debug)]
pub struct RawFile {
    /// Decompressed content.
    pub content: Vec<u8>,
    /// Size on disk.
    pub size: u64,
    /// SHA-256 of the bytes on disk, hex.
    pub sha256: String,
}

/// Reading failed: either the file is broken (rules 1 and 9) or it could not be read at all
/// (permissions, vanished): the latter leaves the file where it is.
#[derive(Debug)]
pub enum ReadError {
    Broken { size: u64, sha256: String, broken: Broken },
    Io(std::io::Error),
}

/// Reads a queue file: refuses it unread when larger than `max_bytes` (rule 9), inflates
/// `.json.gz` on the fly (a corrupt stream is rule 1; more than `max_bytes` inflated is
/// rule 9), and hashes the bytes on disk.
pub fn read_file(path: &Path, max_bytes: u64) -> Result<RawFile, ReadError> {
    let mut f = fs_err::File::open(path).map_err(ReadError::Io)?;
    let size = f.metadata().map_err(ReadError::Io)?.len();
    if size > max_bytes {
        // Hashed anyway (streamed, not kept), so the load log identifies the file.
        let digest = crate::core::hash::sha256_of(&mut f).map_err(ReadError::Io)?;
        return Err(ReadError::Broken {
            size,
            sha256: hex::encode(digest),
            broken: broken(
                9,
                ".",
                format!("file is {size} bytes, over the limit sales.max_file_bytes = {max_bytes}"),
            ),
        });
    }
    // `size` is at most `max_bytes` here; the capacity is only a hint.
    let mut disk = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // Bounded too: a writer that appends after the stat cannot make this read unbounded.
    f.take(max_bytes.saturating_add(1)).read_to_end(&mut disk).map_err(ReadError::Io)?;
    if disk.len() as u64 > max_bytes {
        return Err(ReadError::Broken {
            size: disk.len() as u64,
            sha256: hex::encode(Sha256::digest(&disk)),
            broken: broken(
                9,
                ".",
                format!("file grew past the limit sales.max_file_bytes = {max_bytes} while it was read"),
            ),
        });
    }
    let gz = path.to_str().is_some_and(|p| p.ends_with(".gz"));
    read_bytes(disk, gz, max_bytes)
}

/// The checks of [`read_file`] on bytes already read (a member of an archive, for replay):
/// inflates `.json.gz` content (`gz`) within `max_bytes` and hashes the bytes as stored.
pub fn read_bytes(disk: Vec<u8>, gz: bool, max_bytes: u64) -> Result<RawFile, ReadError> {
    let size = disk.len() as u64;
    let sha256 = hex::encode(Sha256::digest(&disk));
    if !gz {
        return Ok(RawFile { size: disk.len() as u64, content: disk, sha256 });
    }
    let mut content = Vec::new();
    let mut inflater = flate2::read::MultiGzDecoder::new(&disk[..]).take(max_bytes.saturating_add(1));
    if let Err(e) = inflater.read_to_end(&mut content) {
        return Err(ReadError::Broken {
            size,
            sha256,
            broken: broken(1, ".", format!("gzip stream is corrupt: {e}")),
        });
    }
    if content.len() as u64 > max_bytes {
        return Err(ReadError::Broken {
            size,
            sha256,
            broken: broken(
                9,
                ".",
                format!("decompressed content exceeds the limit sales.max_file_bytes = {max_bytes}"),
            ),
        });
    }
    Ok(RawFile { content, size, sha256 })
}

// ---- the wire structure (what serde checks) -------------------------------------------------

/// Requires the field to be present while allowing JSON `null` (serde would otherwise take
/// a missing `Option` field as `None`).
fn present_nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// A string of the file as PostgreSQL `text` can hold it: U+0000 is refused where it is read
/// (rule 3, with its JSON path), so no string field can pass validation and then fail the
/// load's insert. Every string of the wire structure is one (but `format`, checked as such).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.find('\0') {
            None => Ok(Text(s)),
            Some(at) => Err(de::Error::custom(format!(
                "the string holds U+0000 (at byte {at}), which PostgreSQL text cannot store"
            ))),
        }
    }
}

impl Text {
    fn into_opt(t: Option<Text>) -> Option<String> {
        t.map(|t| t.0)
    }
}

#[derive(Deserialize)]
struct WireFile {
    format: String,
    shop: i64,
    cash: i64,
    #[serde(default)]
    source: Option<WireSource>,
    shift: WireShift,
    documents: Vec<WireDocument>,
}

#[derive(Deserialize)]
struct WireSource {
    #[serde(default)]
    host: Option<Text>,
    #[serde(default)]
    ip: Option<Text>,
    #[serde(default)]
    software: Option<Text>,
}

#[derive(Deserialize)]
struct WireShift {
    number: i64,
    #[serde(deserialize_with = "present_nullable")]
    opened_at: Option<Text>,
    #[serde(default)]
    closed_at: Option<Text>,
}

#[derive(Deserialize)]
struct WireDocument {
    number: i64,
    #[serde(rename = "type")]
    doctype: Text,
    opened_at: Text,
    #[serde(default)]
    closed_at: Option<Text>,
    #[serde(default)]
    items: Option<Vec<WireItem>>,
    payments: Vec<WirePayment>,
}

#[derive(Deserialize)]
struct WireItem {
    pos: i64,
    ware: Text,
    #[serde(default)]
    name: Option<Text>,
    dept: i64,
    quantity: DecimalText,
    price: DecimalText,
    #[serde(default)]
    discount: Option<DecimalText>,
    sum: DecimalText,
}

#[derive(Deserialize)]
struct WirePayment {
    #[serde(rename = "type")]
    paytype: Text,
    amount: DecimalText,
    #[serde(default)]
    change: Option<DecimalText>,
}

/// A decimal exactly as written: a JSON string, or a JSON number's own text (serde_json's
/// `arbitrary_precision` keeps it, and `Number::as_str` gives it back: no float on the way).
struct DecimalText(String);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(DecimalText(s)),
            serde_json::Value::Number(n) => Ok(DecimalText(n.as_str().to_string())),
            other => {
                Err(de::Error::invalid_type(unexpected(&other), &"a decimal as a JSON string or number"))
            }
        }
    }
}

fn unexpected(v: &serde_json::Value) -> de::Unexpected<'_> {
    use serde_json::Value;
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
        Value::String(s) => de::Unexpected::Str(s),
        Value::Number(_) => de::Unexpected::Other("number"),
    }
}

// ---- parsing --------------------------------------------------------------------------------

/// Parses and validates a file's (decompressed) content.
pub fn parse(content: &[u8]) -> Result<SalesFile, Broken> {
    parse_file(content).map_err(|b| Broken { register: register_of(content), ..b })
}

/// The top-level `shop` and `cash` of a broken file, when it is a JSON object that has both
/// as integers from 1 to i32::MAX.
fn register_of(content: &[u8]) -> Option<(i32, i32)> {
    #[derive(Deserialize)]
    struct Head {
        shop: Option<serde_json::Value>,
        cash: Option<serde_json::Value>,
    }
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let head: Head = serde_json::from_slice(content).ok()?;
    let code =
        |v: Option<serde_json::Value>| v?.as_i64().filter(|n| *n > 0).and_then(|n| i32::try_from(n).ok());
    Some((code(head.shop)?, code(head.cash)?))
}

fn parse_file(content: &[u8]) -> Result<SalesFile, Broken> {
    // A UTF-8 byte order mark is tolerated (RFC 8259 allows ignoring it).
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let mut de = serde_json::Deserializer::from_slice(content);
    let wire: WireFile = match serde_path_to_error::deserialize(&mut de) {
        Ok(w) => w,
        Err(e) => return Err(structure_error(content, e)),
    };
    if let Err(e) = de.end() {
        return Err(broken(1, ".", format!("not a single JSON object: {e}")));
    }
    if wire.format != FORMAT {
        return Err(broken(2, "format", format!("format is {:?}, expected {FORMAT:?}", wire.format)));
    }
    validate(wire)
}

/// Classifies a serde failure: syntax, encoding, not an object → rule 1; a wrong or missing
/// `format` → rule 2 (checked first, so a future format is reported as such); the rest → 3.
fn structure_error(content: &[u8], e: serde_path_to_error::Error<serde_json::Error>) -> Broken {
    let path = e.path().to_string();
    let inner = e.into_inner();
    use serde_json::error::Category;
    match inner.classify() {
        // An escaped unpaired UTF-16 surrogate ("\ud800") is well-formed JSON that no UTF-8
        // string, and so no PostgreSQL text, can hold: a bad value (rule 3) at its path.
        // serde_json says "lone leading surrogate in hex escape", or "unexpected end of hex
        // escape" for a leading surrogate that no `\u` follows (it says that of nothing else).
        Category::Syntax
            if ["surrogate", "end of hex escape"].iter().any(|m| inner.to_string().contains(m)) =>
        {
            return broken(
                3,
                path,
                format!(
                    "the string holds an unpaired UTF-16 surrogate, which PostgreSQL text cannot store ({})",
                    strip_position(&inner.to_string())
                ),
            )
        }
        Category::Syntax | Category::Eof | Category::Io => {
            return broken(1, ".", format!("not valid UTF-8 JSON: {inner}"))
        }
        Category::Data => {}
    }
    #[derive(Deserialize)]
    struct Head {
        format: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Head>(content) {
        Err(_) => return broken(1, ".", format!("not a single JSON object: {inner}")),
        Ok(Head { format: None }) => return broken(2, "format", "format is missing"),
        Ok(Head { format: Some(f) }) if f.as_str() != Some(FORMAT) => {
            return broken(2, "format", format!("format is {f}, expected {FORMAT:?}"))
        }
        Ok(_) => {}
    }
    let message = strip_position(&inner.to_string());
    broken(3, path, message)
}

/// serde_json appends " at line L column C"; the path says where already.
fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

fn positive_i32(v: i64, path: &str) -> Result<i32, Broken> {
    match i32::try_from(v) {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(broken(3, path, format!("{v} is out of range: expected an integer from 1 to {}", i32::MAX))),
    }
}

/// Parses a local shop timestamp `YYYY-MM-DDTHH:MM:SS[.ffffff]` (no zone). Fractions
/// beyond the microsecond are accepted and truncated when stored.
fn timestamp(s: &str, path: &str) -> Result<NaiveDateTime, Broken> {
    let b = s.as_bytes();
    let shape_ok = b.len() >= 19
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && (b.len() == 19
            || (b[19] == b'.' && (21..=29).contains(&b.len()) && b[20..].iter().all(u8::is_ascii_digit)));
    let bad = || broken(3, path, format!("{s:?} is not a local timestamp YYYY-MM-DDTHH:MM:SS[.ffffff]"));
    if !shape_ok {
        return Err(bad());
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| bad())
}

fn optional_timestamp(s: &Option<Text>, path: &str) -> Result<Option<NaiveDateTime>, Broken> {
    s.as_ref().map(|s| timestamp(&s.0, path)).transpose()
}

/// Parses decimal text exactly: an optional sign, digits with an optional fraction, an
/// optional exponent. More than `max_scale` significant fraction digits (trailing zeros do
/// not count: "89.900" is 89.90) is rule 4, and so is text that is not a finite number or
/// does not fit 28 significant digits.
pub fn decimal(text: &str, max_scale: u32, path: &str) -> Result<Decimal, Broken> {
    let not_number = || broken(4, path, format!("{text:?} is not a finite decimal number"));
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let exp: i64 = rest[i + 1..].parse().map_err(|_| not_number())?;
            (&rest[..i], exp)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(not_number());
    }
    let mut digits: String = format!("{int_part}{frac_part}");
    // Checked arithmetic throughout: the exponent is the file's, any i64 at all
    // ("1e9223372036854775807" once made this wrap into a capacity overflow).
    let mut scale: i64 = i64::try_from(frac_part.len())
        .ok()
        .and_then(|frac| frac.checked_sub(exponent))
        .ok_or_else(not_number)?;
    // Normalise: drop trailing zeros of the fraction, then leading zeros.
    while scale > 0 && digits.ends_with('0') {
        digits.pop();
        scale -= 1;
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        let mut zero = Decimal::ZERO;
        zero.rescale(max_scale);
        return Ok(zero);
    }
    if scale > i64::from(max_scale) {
        return Err(broken(4, path, format!("{text:?} has more than {max_scale} fraction digits")));
    }
    let mut digits = trimmed.to_string();
    if scale < 0 {
        // Whole digits beyond the 28 a decimal carries are refused before any is written.
        let zeros = scale.unsigned_abs();
        let whole = u64::try_from(digits.len()).ok().and_then(|n| n.checked_add(zeros));
        if whole.is_none_or(|n| n > MAX_DIGITS) {
            return Err(not_number());
        }
        digits.extend(std::iter::repeat_n('0', zeros as usize));
        scale = 0;
    }
    if digits.len() as u64 > MAX_DIGITS {
        return Err(not_number());
    }
    let m: i128 = digits.parse().map_err(|_| not_number())?;
    let scale = u32::try_from(scale).map_err(|_| not_number())?;
    let mut d =
        Decimal::try_from_i128_with_scale(if negative { -m } else { m }, scale).map_err(|_| not_number())?;
    d.rescale(max_scale);
    if d.scale() != max_scale {
        // Too many whole digits to carry the fraction digits: rust_decimal keeps 28 and
        // rescale leaves such a value as it was.
        return Err(not_number());
    }
    Ok(d)
}

/// A sum or product of the file's numbers that no decimal of 28 digits can carry (rule 4).
fn too_large(path: &str) -> Broken {
    broken(4, path, "the amounts here add up or multiply to more than a decimal of 28 digits can carry")
}

/// The significant digits a `rust_decimal::Decimal` carries.
const MAX_DIGITS: u64 = 28;
const MONEY_SCALE: u32 = 2;
const QUANTITY_SCALE: u32 = 3;

fn money(t: &DecimalText, path: &str) -> Result<Decimal, Broken> {
    decimal(&t.0, MONEY_SCALE, path)
}

fn non_negative(d: Decimal, path: &str) -> Result<Decimal, Broken> {
    if d.is_sign_negative() && !d.is_zero() {
        return Err(broken(3, path, format!("{d} is out of range: expected 0 or more")));
    }
    Ok(d)
}

fn positive(d: Decimal, path: &str) -> Result<Decimal, Broken> {
    if d <= Decimal::ZERO {
        return Err(broken(3, path, format!("{d} is out of range: expected more than 0")));
    }
    Ok(d)
}

/// Checks everything serde cannot and builds the domain value (rules 3–8).
fn validate(w: WireFile) -> Result<SalesFile, Broken> {
    let shop = positive_i32(w.shop, "shop")?;
    let cash = positive_i32(w.cash, "cash")?;
    let shift = ShiftHeader {
        number: positive_i32(w.shift.number, "shift.number")?,
        opened_at: optional_timestamp(&w.shift.opened_at, "shift.opened_at")?,
        closed_at: optional_timestamp(&w.shift.closed_at, "shift.closed_at")?,
    };
    let source = w
        .source
        .map(|s| Source {
            host: Text::into_opt(s.host),
            ip: Text::into_opt(s.ip),
            software: Text::into_opt(s.software),
        })
        .unwrap_or_default();
    let mut numbers = HashSet::with_capacity(w.documents.len());
    let mut documents = Vec::with_capacity(w.documents.len());
    for (di, wd) in w.documents.into_iter().enumerate() {
        let p = format!("documents[{di}]");
        let number = positive_i32(wd.number, &format!("{p}.number"))?;
        if !numbers.insert(number) {
            return Err(broken(
                5,
                format!("{p}.number"),
                format!("document number {number} appears twice in the file"),
            ));
        }
        documents.push(validate_document(wd, number, &p)?);
    }
    Ok(SalesFile { shop, cash, source, shift, documents })
}

fn validate_document(wd: WireDocument, number: i32, p: &str) -> Result<Document, Broken> {
    let doctype = DocType::parse(&wd.doctype.0).ok_or_else(|| {
        broken(
            3,
            format!("{p}.type"),
            format!("{:?} is not a document type: expected sale, return, cash_in or cash_out", wd.doctype.0),
        )
    })?;
    let opened_at = timestamp(&wd.opened_at.0, &format!("{p}.opened_at"))?;
    let closed_at = optional_timestamp(&wd.closed_at, &format!("{p}.closed_at"))?;
    let closed = closed_at.is_some();

    let wire_items = match wd.items {
        Some(items) => items,
        None if doctype.has_goods() => {
            return Err(broken(
                3,
                format!("{p}.items"),
                format!("missing field `items` (required for a {} document)", doctype.as_str()),
            ));
        }
        None => Vec::new(),
    };
    if !doctype.has_goods() && !wire_items.is_empty() {
        return Err(broken(
            8,
            format!("{p}.items"),
            format!("a {} document must have no items", doctype.as_str()),
        ));
    }
    if doctype.has_goods() && closed && wire_items.is_empty() {
        return Err(broken(
            3,
            format!("{p}.items"),
            format!("a closed {} document must have items", doctype.as_str()),
        ));
    }

    let mut positions = HashSet::with_capacity(wire_items.len());
    let mut items = Vec::with_capacity(wire_items.len());
    let mut items_total = Decimal::ZERO;
    for (ii, wi) in wire_items.into_iter().enumerate() {
        let ip = format!("{p}.items[{ii}]");
        let item = validate_item(wi, &ip)?;
        if !positions.insert(item.pos) {
            return Err(broken(
                5,
                format!("{ip}.pos"),
                format!("position {} appears twice in document {number}", item.pos),
            ));
        }
        items_total = items_total.checked_add(item.sum).ok_or_else(|| too_large(&format!("{ip}.sum")))?;
        items.push(item);
    }

    let mut payments = Vec::with_capacity(wd.payments.len());
    let mut paid = Decimal::ZERO;
    for (pi, wp) in wd.payments.into_iter().enumerate() {
        let pp = format!("{p}.payments[{pi}]");
        let paytype = wp.paytype.0;
        if paytype.is_empty() {
            return Err(broken(3, format!("{pp}.type"), "payment type is empty"));
        }
        let amount = positive(money(&wp.amount, &format!("{pp}.amount"))?, &format!("{pp}.amount"))?;
        let change = match &wp.change {
            Some(c) => non_negative(money(c, &format!("{pp}.change"))?, &format!("{pp}.change"))?,
            None => Decimal::ZERO,
        };
        if !change.is_zero() && paytype != "cash" {
            return Err(broken(
                3,
                format!("{pp}.change"),
                format!("change is only given on cash, not on {paytype:?}"),
            ));
        }
        // amount and change are both 0 or more: their difference cannot overflow.
        paid = paid.checked_add(amount - change).ok_or_else(|| too_large(&format!("{pp}.amount")))?;
        payments.push(Payment { paytype, amount, change });
    }

    let total = if doctype.has_goods() {
        if closed && items_total != paid {
            return Err(broken(
                6,
                format!("{p}.payments"),
                format!(
                    "document {number}: items sum to {items_total} but payments (amount − change) to {paid}"
                ),
            ));
        }
        items_total
    } else {
        let cash_payments = payments.iter().filter(|p| p.paytype == "cash").count();
        if closed && (payments.len() != 1 || cash_payments != 1) {
            return Err(broken(
                8,
                format!("{p}.payments"),
                format!(
                    "a closed {} document needs exactly one cash payment, it has {} payment(s)",
                    doctype.as_str(),
                    payments.len()
                ),
            ));
        }
        payments
            .iter()
            .filter(|p| p.paytype == "cash")
            .try_fold(Decimal::ZERO, |sum, p| sum.checked_add(p.amount - p.change))
            .ok_or_else(|| too_large(&format!("{p}.payments")))?
    };

    Ok(Document { number, doctype, opened_at, closed_at, total, items, payments })
}

fn validate_item(wi: WireItem, ip: &str) -> Result<Item, Broken> {
    let pos = positive_i32(wi.pos, &format!("{ip}.pos"))?;
    let ware = wi.ware.0;
    let ware_chars = ware.chars().count();
    if !(1..=64).contains(&ware_chars) {
        return Err(broken(
            3,
            format!("{ip}.ware"),
            format!("ware must be 1 to 64 characters, it has {ware_chars}"),
        ));
    }
    let name = Text::into_opt(wi.name);
    if let Some(name) = &name {
        let n = name.chars().count();
        if n > 256 {
            return Err(broken(
                3,
                format!("{ip}.name"),
                format!("name must be at most 256 characters, it has {n}"),
            ));
        }
    }
    let dept = match i32::try_from(wi.dept) {
        Ok(d) if d >= 0 => d,
        _ => {
            return Err(broken(
                3,
                format!("{ip}.dept"),
                format!("{} is out of range: expected an integer from 0 to {}", wi.dept, i32::MAX),
            ))
        }
    };
    let qp = format!("{ip}.quantity");
    let quantity = positive(decimal(&wi.quantity.0, QUANTITY_SCALE, &qp)?, &qp)?;
    let pp = format!("{ip}.price");
    let price = non_negative(money(&wi.price, &pp)?, &pp)?;
    let dp = format!("{ip}.discount");
    let discount = match &wi.discount {
        Some(d) => non_negative(money(d, &dp)?, &dp)?,
        None => Decimal::ZERO,
    };
    let sp = format!("{ip}.sum");
    let sum = non_negative(money(&wi.sum, &sp)?, &sp)?;
    // Checked like every sum of the file's numbers: values rust_decimal cannot carry are
    // rule 4 at their path, never a panic (the fuzz target sales_file found the product).
    let expected = quantity
        .checked_mul(price)
        .ok_or_else(|| too_large(&format!("{ip}.price")))?
        .round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero)
        .checked_sub(discount)
        .ok_or_else(|| too_large(&dp))?;
    if sum != expected {
        return Err(broken(
            7,
            sp,
            format!("sum is {sum}, but round({quantity} × {price}, 2) − {discount} = {expected}"),
        ));
    }
    Ok(Item { pos, ware, name, dept, quantity, price, discount, sum })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(t: &str) -> Result<String, u8> {
        decimal(t, MONEY_SCALE, "$.x").map(|d| d.to_string()).map_err(|b| b.rule)
    }

    #[test]
    fn decimals_are_exact_with_exponents_and_trailing_zeros() {
        assert_eq!(money("89.9"), Ok("89.90".into()));
        assert_eq!(money("89.900"), Ok("89.90".into()), "trailing zeros do not count");
        assert_eq!(money("89.901"), Err(4), "a third significant fraction digit");
        assert_eq!(money("1.5e2"), Ok("150.00".into()));
        assert_eq!(money("1.5E-2"), Err(4), "0.015: three fraction digits");
        assert_eq!(money("12345e-2"), Ok("123.45".into()));
        assert_eq!(money("10E-3"), Ok("0.01".into()), "the exponent moves zeros into the fraction");
        assert_eq!(money("+7"), Ok("7.00".into()));
        assert_eq!(money(".5"), Ok("0.50".into()));
        assert_eq!(money("5."), Ok("5.00".into()));
    }

    #[test]
    fn sums_and_products_too_large_for_a_decimal_are_rule_4_at_their_path() {
        let file = |items: &str, payments: &str| {
            format!(
                r#"{{"format":"csjobs-sales/1","shop":8,"cash":17,"shift":{{"number":1,"opened_at":null}},
                "documents":[{{"number":1,"type":"sale","opened_at":"2026-11-20T10:00:00",
                "closed_at":"2026-11-20T10:01:00","items":[{items}],"payments":[{payments}]}}]}}"#
            )
        };
        let big = "99999999999999999999999999.99";
        let item = |pos: usize, q: &str, p: &str, sum: &str| {
            format!(r#"{{"pos":{pos},"ware":"1","dept":1,"quantity":"{q}","price":"{p}","sum":"{sum}"}}"#)
        };
        let b =
            parse(file(&item(1, "1000000000000000", "100000000000000", "1.00"), "").as_bytes()).unwrap_err();
        assert_eq!((b.rule, b.path.as_str()), (4, "documents[0].items[0].price"), "{b}");
        // About 792 items of 10^26 pass what a decimal of 28 digits carries (7.9 × 10^28).
        let items: Vec<String> = (1..=1000).map(|i| item(i, "1", big, big)).collect();
        let b = parse(file(&items.join(","), "").as_bytes()).unwrap_err();
        assert_eq!(b.rule, 4, "{b}");
        assert!(b.path.starts_with("documents[0].items[7") && b.path.ends_with("].sum"), "{b}");
        let pays: Vec<String> = (0..1000).map(|_| format!(r#"{{"type":"card","amount":"{big}"}}"#)).collect();
        let b = parse(file(&item(1, "1", "1.00", "1.00"), &pays.join(",")).as_bytes()).unwrap_err();
        assert_eq!(b.rule, 4, "{b}");
        assert!(b.path.starts_with("documents[0].payments[7") && b.path.ends_with("].amount"), "{b}");
    }

    #[test]
    fn a_reason_quotes_at_most_a_few_hundred_characters_of_the_value() {
        let long = "\u{378}".repeat(100_000);
        let b = decimal(&long, 2, "documents[0].items[0].price").unwrap_err();
        assert!(b.message.chars().count() < MAX_REASON_CHARS + 40, "{}", b.message.len());
        assert!(b.message.ends_with("bytes in all)"), "{}", b.message);
    }

    #[test]
    fn zero_whatever_its_sign_or_exponent_is_zero() {
        for z in ["0", "-0", "-0.000", "0e999999999", "-.0", "0.00e-5"] {
            assert_eq!(money(z), Ok("0.00".into()), "{z}");
        }
        assert!(!decimal("-0", 2, "p").unwrap().is_sign_negative());
    }

    #[test]
    fn huge_or_malformed_numbers_are_rule_4_and_cheap() {
        assert_eq!(money(&"9".repeat(26)), Ok(format!("{}.00", "9".repeat(26))));
        assert_eq!(money(&"9".repeat(27)), Err(4), "cannot carry its two fraction digits in 28");
        assert_eq!(money(&"9".repeat(29)), Err(4), "more than 28 significant digits");
        assert_eq!(money("1e999999999"), Err(4));
        assert_eq!(money("1e-999999999"), Err(4));
        assert_eq!(money("100000000000000000000000000.01"), Err(4));
        assert_eq!(money("8000000000000000000000000.0000"), Ok("8000000000000000000000000.00".into()));
        for bad in ["", "-", ".", "e5", "1e", "1e+", "1_000", "1.2.3", "0x10", "NaN", "inf", "1 000", "١"] {
            assert_eq!(money(bad), Err(4), "{bad:?}");
        }
    }

    #[test]
    fn a_decimal_comes_as_written_from_a_json_string_or_number_and_nothing_else() {
        let text = |j: &str| serde_json::from_str::<DecimalText>(j).map(|d| d.0).map_err(|e| e.to_string());
        assert_eq!(text("12.30"), Ok("12.30".into()), "a number's own text, trailing zero kept");
        assert_eq!(text("1e-2"), Ok("1e-2".into()));
        assert_eq!(
            text("123456789012345678901234567890.123"),
            Ok("123456789012345678901234567890.123".into())
        );
        assert_eq!(text("\"7.5\""), Ok("7.5".into()));
        assert_eq!(text("-0"), Ok("-0".into()));
        for other in ["null", "true", "[1]", "{\"a\": 1}"] {
            assert!(text(other).unwrap_err().contains("a decimal as a JSON string or number"), "{other}");
        }
    }
}
