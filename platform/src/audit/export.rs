//! A tenant's audit chain as a file it can verify offline (`GET /v1/audit-events/export`,
//! `docketctl audit verify --file`): one JSON line of [`Header`] naming the chain and its
//! head at the moment of the export, then every row from the first (`audit::StoredEvent`,
//! with `seq`, `prev_hash` and `hash`). The verifier recomputes every link, checks that the
//! file reaches the head its header names (a cut download is not a valid chain) and, given
//! a signed checkpoint of the chain, that the file holds the checkpoint's row unchanged.

use super::checkpoint::Checkpoint;
use super::verify::{Report, Walker};
use super::{COLS, StoredEvent};
use crate::db::{Db, DbError};
use crate::ids::TenantId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// The header's `format`.
pub const FORMAT: &str = "docket-audit-export/1";
/// Rows read per query while streaming.
pub const PAGE: i64 = 2_000;

/// The file's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT`].
    pub format: String,
    /// The tenant's id (part of every row's hash).
    pub chain: String,
    /// The chain's head when the export began: the file ends there.
    pub head_seq: i64,
    /// The head row's hash (the genesis hash for an empty chain).
    pub head_hash: String,
    /// When the export began.
    pub exported_at: DateTime<Utc>,
}

/// Rows of `tenant`'s chain after `after` up to `upto`, at most [`PAGE`], in order. The
/// chain is append-only, so pages read in separate transactions still form one chain.
pub async fn page(db: &Db, tenant: TenantId, after: i64, upto: i64) -> Result<Vec<StoredEvent>, DbError> {
    let mut tx = db.begin_tenant(tenant).await?;
    let sql = format!("SELECT {COLS} FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3");
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(upto)
        .bind(PAGE)
        .fetch_all(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(rows)
}

/// What verifying an exported file found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileReport {
    /// True when the header is valid, every link holds, the file reaches its header's
    /// head and (if given) agrees with the checkpoint.
    pub ok: bool,
    /// The chain walk.
    pub chain: Report,
    /// The header, if it could be read.
    pub header: Option<Header>,
    /// Everything wrong besides a broken link, in the order found.
    pub problems: Vec<String>,
    /// The checkpoint's position, when one was checked.
    pub checkpoint_seq: Option<i64>,
}

/// Verifies an exported chain read from `file` (and against `checkpoint`, already verified
/// as signed by a trusted key).
pub fn verify_file(file: impl BufRead, checkpoint: Option<&Checkpoint>) -> FileReport {
    let mut lines = file.lines();
    let mut problems = vec![];
    let header = match lines.next() {
        Some(Ok(l)) => match serde_json::from_str::<Header>(&l) {
            Ok(h) if h.format == FORMAT => Some(h),
            Ok(h) => {
                problems.push(format!("the header's format {} is not {FORMAT}", h.format));
                None
            }
            Err(e) => {
                problems.push(format!("line 1 is not a {FORMAT} header: {e}"));
                None
            }
        },
        _ => {
            problems.push("the file is empty".into());
            None
        }
    };
    let chain = header.as_ref().map(|h| h.chain.clone()).unwrap_or_default();
    let mut walker = Walker::new(chain.clone());
    let mut at_checkpoint = None;
    if header.is_some() {
        for (n, line) in lines.enumerate() {
            let e = match line
                .map_err(|e| e.to_string())
                .and_then(|l| serde_json::from_str::<StoredEvent>(&l).map_err(|e| e.to_string()))
            {
                Ok(e) => e,
                Err(e) => {
                    problems.push(format!("line {} is not an audit event: {e}", n + 2));
                    break;
                }
            };
            if checkpoint.is_some_and(|c| c.seq == e.seq) {
                at_checkpoint = Some(e.hash.clone());
            }
            if !walker.push(&e) {
                break;
            }
        }
    }
    let (seq, hash) = walker.head();
    let (seq, hash) = (seq, hash.to_owned());
    let walked = walker.finish();
    if let Some(h) = &header
        && walked.ok
        && problems.is_empty()
        && (seq, hash.as_str()) != (h.head_seq, h.head_hash.as_str())
    {
        problems.push(format!(
            "the file ends at seq {seq} but its header names the head seq {}: it is cut short or was altered",
            h.head_seq
        ));
    }
    if let Some(cp) = checkpoint {
        if cp.chain != chain {
            problems.push(format!(
                "the checkpoint is of chain {}, the file of chain {chain}",
                cp.chain
            ));
        } else {
            match at_checkpoint {
                None => problems.push(format!(
                    "the file ends at seq {seq}, before the signed checkpoint at seq {}: rows {}..={} are missing",
                    cp.seq,
                    seq + 1,
                    cp.seq
                )),
                Some(h) if h != cp.hash => problems.push(format!(
                    "the row at seq {} differs from the one the checkpoint signed: the chain was rewritten",
                    cp.seq
                )),
                Some(_) => {}
            }
        }
    }
    FileReport {
        ok: walked.ok && problems.is_empty(),
        chain: walked,
        header,
        problems,
        checkpoint_seq: checkpoint.map(|c| c.seq),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GENESIS, row_hash};
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> (Header, Vec<StoredEvent>) {
        let mut prev = GENESIS.to_owned();
        let mut rows = vec![];
        for seq in 1..=n {
            let mut e = StoredEvent {
                seq,
                id: uuid::Uuid::new_v4(),
                occurred_at: Utc::now(),
                actor_kind: "system".into(),
                actor_id: None,
                action: format!("test.{seq}"),
                target: None,
                outcome: "allowed".into(),
                reason: None,
                request_id: None,
                details: json!({}),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            e.hash = row_hash("t1", &e);
            prev = e.hash.clone();
            rows.push(e);
        }
        let h = Header {
            format: FORMAT.into(),
            chain: "t1".into(),
            head_seq: n,
            head_hash: prev,
            exported_at: Utc::now(),
        };
        (h, rows)
    }

    fn file(h: &Header, rows: &[StoredEvent]) -> std::io::Cursor<Vec<u8>> {
        let mut out = serde_json::to_string(h).expect("h") + "\n";
        for r in rows {
            out += &(serde_json::to_string(r).expect("r") + "\n");
        }
        std::io::Cursor::new(out.into_bytes())
    }

    fn checkpoint(rows: &[StoredEvent], seq: i64) -> Checkpoint {
        Checkpoint {
            format: super::super::checkpoint::FORMAT.into(),
            chain: "t1".into(),
            seq,
            hash: rows[seq as usize - 1].hash.clone(),
            at: Utc::now(),
        }
    }

    #[test]
    fn an_intact_file_verifies_with_and_without_its_checkpoint() {
        let (h, rows) = chain(5);
        let r = verify_file(file(&h, &rows), None);
        assert!(r.ok, "{r:?}");
        assert_eq!(r.chain.events, 5);
        assert!(verify_file(file(&h, &rows), Some(&checkpoint(&rows, 3))).ok);
    }

    #[test]
    fn a_cut_file_an_edited_row_and_a_consistent_rewrite_are_each_named() {
        let (h, rows) = chain(5);
        let cut = verify_file(file(&h, &rows[..4]), None);
        assert!(!cut.ok && cut.problems[0].contains("cut short"), "{cut:?}");

        let mut edited = rows.clone();
        edited[2].action = "test.other".into();
        let r = verify_file(file(&h, &edited), None);
        assert_eq!(r.chain.first_break.as_ref().map(|b| b.seq), Some(3), "{r:?}");

        // Truncated consistently (header rewritten to the shorter head): only a checkpoint
        // taken earlier can tell.
        let (h3, rows3) = (
            Header {
                head_seq: 3,
                head_hash: rows[2].hash.clone(),
                ..h.clone()
            },
            &rows[..3],
        );
        assert!(verify_file(file(&h3, rows3), None).ok);
        let r = verify_file(file(&h3, rows3), Some(&checkpoint(&rows, 5)));
        assert!(!r.ok && r.problems[0].contains("rows 4..=5 are missing"), "{r:?}");

        // A rewritten chain from row 4 on (every hash recomputed) passes the walk but not
        // the checkpoint signed before the rewrite.
        let (_, other) = chain(5);
        let mut rewritten = rows[..3].to_vec();
        let mut prev = rows[2].hash.clone();
        for mut e in other.into_iter().skip(3) {
            e.prev_hash = prev.clone();
            e.hash = row_hash("t1", &e);
            prev = e.hash.clone();
            rewritten.push(e);
        }
        let h5 = Header {
            head_hash: prev,
            ..h.clone()
        };
        assert!(verify_file(file(&h5, &rewritten), None).ok);
        let r = verify_file(file(&h5, &rewritten), Some(&checkpoint(&rows, 4)));
        assert!(!r.ok && r.problems[0].contains("rewritten"), "{r:?}");
    }

    #[test]
    fn a_file_that_is_not_an_export_is_refused_clearly() {
        let r = verify_file(&b"{\"seq\": 1}\n"[..], None);
        assert!(!r.ok && r.problems[0].contains("header"), "{r:?}");
        let r = verify_file(&b""[..], None);
        assert!(!r.ok && r.problems[0].contains("empty"), "{r:?}");
    }
}
