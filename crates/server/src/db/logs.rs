//! Every site's change log as the server holds it, read whole for exports (`ecrf export
//! --database-url`, the web view's downloads).
//!
//! Invariant: one read-only, repeatable-read transaction, so the sites and their logs are one
//! moment's; each site's changes in its commit order, each change's `seq` the server's
//! `changes.seq`.
//!
//! The logs are read by one `COPY … TO STDOUT (FORMAT binary)` and handed over a site at a
//! time, as each site's last change arrives ([`each_site_log`]): the caller folds a site while
//! the next one is read, and no row of the whole trial is held at once. (Fetching 5 million
//! rows as query results held them all and decoded each row's columns by name: 10x the trial
//! spent more time there than in the export itself.)

use futures_util::StreamExt;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use ecrf_log::StoredRecords;

use crate::ServerError;

/// One subject's changes in the site's commit order ($1 site, $2 subject), through the
/// `changes_site_subject` index: the web view's subject page.
pub const SUBJECT_CHANGES: &str =
    "SELECT seq, body FROM changes WHERE site = $1 AND subject = $2 ORDER BY seq";

/// One site's log as pushed: each change's server `seq` and its JSON record (`changes.body`),
/// in commit order.
#[derive(Debug, Default)]
pub struct RawSiteLog {
    /// The site's code.
    pub site: String,
    /// `(seq, body)` of each change.
    pub changes: StoredRecords,
}

/// Reads the sites (all, or those of `only`) and gives `each` every site's log with changes,
/// in site order, as soon as it has been read whole. `each` returns the buffer to read the next
/// site into (one it was given before, so that a trial's sites take turns in a few buffers, or
/// a new one); it is cleared first. Returns every site, those without changes too. An error
/// from `each` stops the read and is returned.
pub async fn each_site_log(
    conn: &mut PgConnection,
    only: Option<&[String]>,
    mut each: impl FnMut(RawSiteLog) -> Result<StoredRecords, ServerError>,
) -> Result<Vec<String>, ServerError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let sites: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM sites WHERE $1::text[] IS NULL OR code = ANY($1) ORDER BY code",
    )
    .bind(only)
    .fetch_all(&mut *tx)
    .await?;
    // COPY takes no parameters: the sites' codes (already read from the table) go in as a
    // literal array, each quoted.
    let filter = match only {
        None => String::new(),
        Some(_) => {
            let quoted: Vec<String> = sites
                .iter()
                .map(|s| format!("'{}'", s.replace('\'', "''")))
                .collect();
            format!("WHERE site = ANY(ARRAY[{}]::text[])", quoted.join(","))
        }
    };
    let mut decoder = CopyDecoder::default();
    let mut current = RawSiteLog::default();
    // `only` naming no existing site reads nothing (an empty ARRAY[] would not parse).
    if only.is_none() || !sites.is_empty() {
        let mut stream = tx
            .copy_out_raw(&format!(
                "COPY (SELECT site, seq, body FROM changes {filter} ORDER BY site, seq) \
                 TO STDOUT (FORMAT binary)"
            ))
            .await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            decoder.feed(&chunk, |site, seq, body| {
                if site != current.site && !current.changes.is_empty() {
                    let mut spare = each(std::mem::take(&mut current))?;
                    spare.clear();
                    current.changes = spare;
                }
                if current.changes.is_empty() {
                    current.site = site.to_string();
                }
                current.changes.push(seq, body);
                Ok(())
            })?;
        }
        decoder.finish()?;
    }
    tx.commit().await?;
    if !current.changes.is_empty() {
        each(current)?;
    }
    Ok(sites)
}

/// PostgreSQL's binary COPY format for rows of (text, bigint, text), decoded as chunks arrive
/// (a row may span chunks): an 11-byte signature, flags and a header extension, then per row a
/// field count and each field's length and bytes, then a count of -1.
#[derive(Debug, Default)]
struct CopyDecoder {
    /// Bytes of a row (or the header) not yet complete.
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
}

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

fn bad(what: &str) -> ServerError {
    ServerError::Internal(format!("reading the change log (COPY binary): {what}"))
}

impl CopyDecoder {
    /// Decodes every complete row of `pending` + `chunk`, keeping the incomplete rest.
    fn feed(
        &mut self,
        chunk: &[u8],
        mut row: impl FnMut(&str, i64, &[u8]) -> Result<(), ServerError>,
    ) -> Result<(), ServerError> {
        // PostgreSQL sends a row a message: most chunks are rows whole, decoded where they lie.
        let buf: std::borrow::Cow<'_, [u8]> = if self.pending.is_empty() {
            std::borrow::Cow::Borrowed(chunk)
        } else {
            self.pending.extend_from_slice(chunk);
            std::borrow::Cow::Owned(std::mem::take(&mut self.pending))
        };
        let mut at = 0;
        if !self.header_read {
            let fixed = SIGNATURE.len() + 8;
            if buf.len() < fixed {
                self.pending = buf.into_owned();
                return Ok(());
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(bad("not a binary COPY stream"));
            }
            let extension = be_u32(&buf[SIGNATURE.len() + 4..fixed]) as usize;
            if buf.len() < fixed + extension {
                self.pending = buf.into_owned();
                return Ok(());
            }
            at = fixed + extension;
            self.header_read = true;
        }
        while at < buf.len() {
            if self.ended {
                return Err(bad("data after the end"));
            }
            match decode_row(&buf[at..])? {
                Row::Incomplete => break,
                Row::End => {
                    self.ended = true;
                    at += 2;
                }
                Row::Fields {
                    site,
                    seq,
                    body,
                    len,
                } => {
                    let site = std::str::from_utf8(site).map_err(|_| bad("a site not UTF-8"))?;
                    // The record's text is checked where it is parsed (JSON is UTF-8).
                    row(site, seq, body)?;
                    at += len;
                }
            }
        }
        self.pending = buf[at..].to_vec();
        Ok(())
    }

    /// The stream ended: it must have ended whole.
    fn finish(&self) -> Result<(), ServerError> {
        if !self.ended || !self.pending.is_empty() {
            return Err(bad("the stream stopped before its end"));
        }
        Ok(())
    }
}

enum Row<'a> {
    Incomplete,
    End,
    Fields {
        site: &'a [u8],
        seq: i64,
        body: &'a [u8],
        /// Bytes the row took.
        len: usize,
    },
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// One row at the start of `b`.
fn decode_row(b: &[u8]) -> Result<Row<'_>, ServerError> {
    if b.len() < 2 {
        return Ok(Row::Incomplete);
    }
    match i16::from_be_bytes([b[0], b[1]]) {
        -1 => return Ok(Row::End),
        3 => {}
        n => return Err(bad(&format!("a row of {n} fields, not 3"))),
    }
    let mut at = 2;
    let mut fields: [&[u8]; 3] = [&[]; 3];
    for field in &mut fields {
        if b.len() < at + 4 {
            return Ok(Row::Incomplete);
        }
        let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let len = usize::try_from(len).map_err(|_| bad("a NULL in a NOT NULL column"))?;
        at += 4;
        if b.len() < at + len {
            return Ok(Row::Incomplete);
        }
        *field = &b[at..at + len];
        at += len;
    }
    let seq: [u8; 8] = fields[1].try_into().map_err(|_| bad("a seq not 8 bytes"))?;
    Ok(Row::Fields {
        site: fields[0],
        seq: i64::from_be_bytes(seq),
        body: fields[2],
        len: at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn stream(rows: &[(&str, i64, &str)]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&4u32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        for (site, seq, body) in rows {
            out.extend_from_slice(&3i16.to_be_bytes());
            field(&mut out, site.as_bytes());
            field(&mut out, &seq.to_be_bytes());
            field(&mut out, body.as_bytes());
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    /// Rows come out whole and in order however the stream is cut into chunks.
    #[test]
    fn rows_cut_anywhere_decode_the_same() {
        let rows = [("01", 1, "{\"a\":1}"), ("01", 7, "é"), ("02", 9, "")];
        let bytes = stream(&rows);
        for size in 1..=bytes.len() {
            let mut d = CopyDecoder::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                d.feed(chunk, |s, q, b| {
                    got.push((s.to_string(), q, String::from_utf8(b.to_vec()).unwrap()));
                    Ok(())
                })
                .unwrap();
            }
            d.finish().unwrap();
            let want: Vec<_> = rows
                .iter()
                .map(|(s, q, b)| (s.to_string(), *q, b.to_string()))
                .collect();
            assert_eq!(got, want, "chunks of {size}");
        }
    }

    /// A stream cut short, or of another shape, is an error, never a shorter log.
    #[test]
    fn a_truncated_or_foreign_stream_is_refused() {
        let bytes = stream(&[("01", 1, "{}")]);
        let mut d = CopyDecoder::default();
        d.feed(&bytes[..bytes.len() - 3], |_, _, _| Ok(())).unwrap();
        assert!(d.finish().is_err());
        let mut d = CopyDecoder::default();
        assert!(
            d.feed(b"site\tseq\tbody\n01\t1\t{}\n", |_, _, _| Ok(()))
                .is_err()
        );
        let mut two = bytes.clone();
        let at = two.len() - 2;
        two.splice(at.., 2i16.to_be_bytes());
        let mut d = CopyDecoder::default();
        let e = d.feed(&two, |_, _, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("2 fields"), "{e}");
    }
}
