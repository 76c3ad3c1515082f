//! Decoding of the `pgoutput` logical replication messages (protocol version 1), as
//! returned by `pg_logical_slot_peek_binary_changes`. Only what the CDC source needs:
//! Begin, Commit, Relation, Insert, Update, Delete; others are recognised and skipped.

use gregor_connect_api::ConnectError;

/// One column of a relation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RelColumn {
    pub(crate) name: String,
    pub(crate) type_oid: u32,
    /// Part of the replica identity (the primary key by default).
    pub(crate) key: bool,
}

/// A table as pgoutput describes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Relation {
    pub(crate) id: u32,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) columns: Vec<RelColumn>,
}

/// A column value in text form; `None` is SQL NULL or an unchanged TOAST value.
pub(crate) type Tuple = Vec<Option<String>>;

#[derive(Debug, PartialEq)]
pub(crate) enum Message {
    Begin {
        xid: u32,
        commit_ts_us: i64,
    },
    Commit {
        end_lsn: u64,
        commit_ts_us: i64,
    },
    Relation(Relation),
    Insert {
        rel: u32,
        new: Tuple,
    },
    Update {
        rel: u32,
        old: Option<Tuple>,
        new: Tuple,
    },
    Delete {
        rel: u32,
        old: Tuple,
    },
    Other,
}

struct Reader<'a> {
    buf: &'a [u8],
}

fn short() -> ConnectError {
    ConnectError::Data("truncated pgoutput message".into())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConnectError> {
        if self.buf.len() < n {
            return Err(short());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ConnectError> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, ConnectError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ConnectError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, ConnectError> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, ConnectError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn cstr(&mut self) -> Result<String, ConnectError> {
        let end = self.buf.iter().position(|&b| b == 0).ok_or_else(short)?;
        let s = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Tuple, ConnectError> {
        let n = self.i16()?;
        let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
        for _ in 0..n {
            match self.u8()? {
                b'n' | b'u' => out.push(None),
                b't' => {
                    let len = usize::try_from(self.i32()?).map_err(|_| short())?;
                    out.push(Some(String::from_utf8_lossy(self.take(len)?).into_owned()));
                }
                k => {
                    return Err(ConnectError::Data(format!(
                        "unknown pgoutput tuple kind {k}"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// Decodes one message.
pub(crate) fn decode(data: &[u8]) -> Result<Message, ConnectError> {
    let mut r = Reader { buf: data };
    Ok(match r.u8()? {
        b'B' => {
            let _final_lsn = r.u64()?;
            let commit_ts_us = r.u64()? as i64;
            let xid = r.u32()?;
            Message::Begin { xid, commit_ts_us }
        }
        b'C' => {
            let _flags = r.u8()?;
            let _commit_lsn = r.u64()?;
            let end_lsn = r.u64()?;
            let commit_ts_us = r.u64()? as i64;
            Message::Commit {
                end_lsn,
                commit_ts_us,
            }
        }
        b'R' => {
            let id = r.u32()?;
            let namespace = r.cstr()?;
            let name = r.cstr()?;
            let _identity = r.u8()?;
            let n = r.i16()?;
            let mut columns = Vec::new();
            for _ in 0..n {
                let flags = r.u8()?;
                let cname = r.cstr()?;
                let type_oid = r.u32()?;
                let _typmod = r.i32()?;
                columns.push(RelColumn {
                    name: cname,
                    type_oid,
                    key: flags & 1 == 1,
                });
            }
            Message::Relation(Relation {
                id,
                namespace,
                name,
                columns,
            })
        }
        b'I' => {
            let rel = r.u32()?;
            if r.u8()? != b'N' {
                return Err(ConnectError::Data(
                    "pgoutput insert without a new tuple".into(),
                ));
            }
            Message::Insert {
                rel,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let rel = r.u32()?;
            let mut old = None;
            let mut kind = r.u8()?;
            if kind == b'K' || kind == b'O' {
                old = Some(r.tuple()?);
                kind = r.u8()?;
            }
            if kind != b'N' {
                return Err(ConnectError::Data(
                    "pgoutput update without a new tuple".into(),
                ));
            }
            Message::Update {
                rel,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let rel = r.u32()?;
            let _kind = r.u8()?;
            Message::Delete {
                rel,
                old: r.tuple()?,
            }
        }
        _ => Message::Other,
    })
}

/// A number as `X/Y` pg_lsn text.
pub(crate) fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_relation_insert_update_delete() {
        let mut rel = vec![b'R'];
        rel.extend(16384u32.to_be_bytes());
        rel.extend(b"public\0users\0");
        rel.push(b'd');
        rel.extend(2i16.to_be_bytes());
        rel.push(1);
        rel.extend(b"id\0");
        rel.extend(23u32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        rel.push(0);
        rel.extend(b"name\0");
        rel.extend(25u32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        let Message::Relation(r) = decode(&rel).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("public", "users"));
        assert!(r.columns[0].key && !r.columns[1].key);

        let mut ins = vec![b'I'];
        ins.extend(16384u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(2i16.to_be_bytes());
        ins.push(b't');
        ins.extend(1i32.to_be_bytes());
        ins.push(b'7');
        ins.push(b'n');
        assert_eq!(
            decode(&ins).unwrap(),
            Message::Insert {
                rel: 16384,
                new: vec![Some("7".into()), None]
            }
        );
        let mut del = vec![b'D'];
        del.extend(16384u32.to_be_bytes());
        del.push(b'K');
        del.extend(1i16.to_be_bytes());
        del.push(b't');
        del.extend(1i32.to_be_bytes());
        del.push(b'7');
        assert_eq!(
            decode(&del).unwrap(),
            Message::Delete {
                rel: 16384,
                old: vec![Some("7".into())]
            }
        );
        assert!(decode(&[b'I', 0]).is_err());
        assert_eq!(format_lsn((1 << 32) | 0x16B3748), "1/16B3748");
    }
}
