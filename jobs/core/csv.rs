//! CSV, written in one place, over the `csv` crate: the reconciliation reports (`,`), the
//! ASTU files (`;`, rules.md §5) and the register checklist of `status` (`,`) all go
//! through [`Writer`] (or [`document`]), so quoting is one rule everywhere.
//!
//! The dialect: a header line, then one record per line; `\n` line ends; UTF-8 as given; a
//! field is written as it is unless it holds the separator, a `"`, a `\r` or a `\n`: then it
//! is quoted (`"…"`, inner quotes doubled, RFC 4180), so a line is always one record with
//! the header's number of fields. A record with a different number of fields than the first
//! one is refused ([`CsvError::Fields`]), never written. (The `csv` crate also quotes an
//! empty field that is a record's only field, `""`, so that the record is not an empty line;
//! no file of csjobs has a single column.)

use std::io::Write;

/// The field separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// `,`: the reconciliation reports, the register checklist.
    Comma,
    /// `;`: the ASTU files.
    Semicolon,
}

impl Separator {
    fn byte(self) -> u8 {
        match self {
            Separator::Comma => b',',
            Separator::Semicolon => b';',
        }
    }
}

/// Why a CSV document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot write CSV: {0}")]
    Io(#[from] std::io::Error),
    /// A record whose number of fields differs from the first record's (the header's): a bug
    /// of the caller, refused rather than written as a file no reader can take.
    #[error("a CSV record has {got} fields where the header has {expected}")]
    Fields { expected: u64, got: u64 },
}

impl From<::csv::Error> for CsvError {
    fn from(e: ::csv::Error) -> Self {
        match e.into_kind() {
            ::csv::ErrorKind::Io(e) => CsvError::Io(e),
            ::csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                CsvError::Fields { expected: expected_len, got: len }
            }
            // Writing byte fields reaches none of the others (UTF-8, serde, seek).
            other => CsvError::Io(std::io::Error::other(format!("{other:?}"))),
        }
    }
}

/// A CSV writer of the dialect above over any `Write` (it buffers; [`Writer::finish`]
/// flushes and hands the output back).
pub struct Writer<W: Write> {
    inner: ::csv::Writer<W>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, separator: Separator) -> Self {
        let inner = ::csv::WriterBuilder::new()
            .delimiter(separator.byte())
            .terminator(::csv::Terminator::Any(b'\n'))
            .quote_style(::csv::QuoteStyle::Necessary)
            .double_quote(true)
            .flexible(false)
            .from_writer(out);
        Writer { inner }
    }

    /// One record (the header is the first one): its fields in order.
    pub fn record<I, T>(&mut self, fields: I) -> Result<(), CsvError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        Ok(self.inner.write_record(fields)?)
    }

    /// Flushes what is buffered and returns the output.
    pub fn finish(self) -> Result<W, CsvError> {
        self.inner.into_inner().map_err(|e| CsvError::Io(e.into_error()))
    }
}

/// A whole document in memory: the header, then every row.
pub fn document<R, T>(
    separator: Separator,
    header: &[&str],
    rows: impl IntoIterator<Item = R>,
) -> Result<Vec<u8>, CsvError>
where
    R: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut w = Writer::new(Vec::new(), separator);
    w.record(header)?;
    for row in rows {
        w.record(row)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sep: Separator, header: &[&str], rows: &[&[&str]]) -> String {
        String::from_utf8(document(sep, header, rows.iter().copied()).unwrap()).unwrap()
    }

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(
            text(Separator::Comma, &["a", "b", "c"], &[&["ул. Баумана, 1", "say \"hi\"", "Казань"]]),
            "a,b,c\n\"ул. Баумана, 1\",\"say \"\"hi\"\"\",Казань\n"
        );
        // The separator in use is quoted, the other one is not.
        assert_eq!(text(Separator::Semicolon, &["x", "y"], &[&["a;b", "c,d"]]), "x;y\n\"a;b\";c,d\n");
        // Line breaks of either kind, and empty fields (a null) as nothing at all.
        assert_eq!(
            text(Separator::Semicolon, &["x", "y", "z"], &[&["a\nb", "c\rd", ""]]),
            "x;y;z\n\"a\nb\";\"c\rd\";\n"
        );
        // Spaces and a leading '#' need no quotes.
        assert_eq!(text(Separator::Comma, &["x", "y"], &[&[" a ", "#b"]]), "x,y\n a ,#b\n");
    }

    #[test]
    fn just_the_header_for_no_rows() {
        assert_eq!(text(Separator::Comma, &["a", "b"], &[]), "a,b\n");
    }

    #[test]
    fn a_record_of_another_width_is_refused() {
        let e = document(Separator::Comma, &["a", "b"], [vec!["1"]]).unwrap_err();
        assert!(matches!(e, CsvError::Fields { expected: 2, got: 1 }), "{e}");
        assert_eq!(e.to_string(), "a CSV record has 1 fields where the header has 2");
    }
}
