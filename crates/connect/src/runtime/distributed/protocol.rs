//! Kafka Connect's group protocol (`ConnectProtocol`, version 0, protocol name
//! `default`, eager): the member metadata a worker sends with JoinGroup and the
//! assignment the leader hands out with SyncGroup, in Kafka's byte layout (big-endian
//! INT16/INT32/INT64, STRING = INT16 length + UTF-8, ARRAY = INT32 count + items), so a
//! group dump reads the same as a Java worker's.
//!
//! ```text
//! metadata   := version:i16 url:string config_offset:i64
//! assignment := version:i16 error:i16 leader:string leader_url:string config_offset:i64
//!               [connector:string [task:i32]]      (task -1 = the connector itself)
//! ```

use std::collections::BTreeMap;

use super::DistError;

/// The protocol name for eager rebalancing (Kafka's `connect.protocol=eager`).
pub const PROTOCOL_NAME: &str = "default";
/// The group's protocol type.
pub const PROTOCOL_TYPE: &str = "connect";
const VERSION: i16 = 0;
/// The task id standing for the connector instance in an assignment.
pub const CONNECTOR_TASK: i32 = -1;

/// What a member tells the group when it joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerState {
    pub url: String,
    pub config_offset: i64,
}

/// The connectors and tasks one worker runs, as the leader assigned them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    pub error: i16,
    pub leader: String,
    pub leader_url: String,
    pub config_offset: i64,
    pub connectors: Vec<String>,
    /// (connector, task id).
    pub tasks: Vec<(String, u32)>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::try_from(len).unwrap_or(0)]);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DistError> {
        if self.0.len() < n {
            return Err(DistError::Protocol(
                "truncated Connect protocol data".into(),
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16, DistError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, DistError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(i32::from_be_bytes(a))
    }
    fn i64(&mut self) -> Result<i64, DistError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, DistError> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(String::new());
        }
        let b = self.take(usize::try_from(len).unwrap_or(0))?;
        String::from_utf8(b.to_vec())
            .map_err(|_| DistError::Protocol("a Connect protocol string is not UTF-8".into()))
    }
    fn count(&mut self) -> Result<usize, DistError> {
        let n = self.i32()?;
        // Each item takes at least 2 bytes: a length that exceeds the input is corrupt.
        let n = usize::try_from(n.max(0)).unwrap_or(0);
        if n > self.0.len() {
            return Err(DistError::Protocol(
                "bad Connect protocol array length".into(),
            ));
        }
        Ok(n)
    }
}

fn check_version(v: i16) -> Result<(), DistError> {
    if v < VERSION {
        return Err(DistError::Protocol(format!(
            "unsupported Connect protocol version {v}"
        )));
    }
    // Later versions start with the v0 fields (Kafka reads them as v0 too).
    Ok(())
}

impl WorkerState {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&VERSION.to_be_bytes());
        put_str(&mut out, &self.url);
        out.extend_from_slice(&self.config_offset.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DistError> {
        let mut r = Reader(bytes);
        check_version(r.i16()?)?;
        Ok(WorkerState {
            url: r.string()?,
            config_offset: r.i64()?,
        })
    }
}

impl Assignment {
    pub fn encode(&self) -> Vec<u8> {
        let mut by_connector: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for c in &self.connectors {
            by_connector.entry(c).or_default().push(CONNECTOR_TASK);
        }
        for (c, t) in &self.tasks {
            by_connector
                .entry(c)
                .or_default()
                .push(i32::try_from(*t).unwrap_or(i32::MAX));
        }
        let mut out = Vec::new();
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.error.to_be_bytes());
        put_str(&mut out, &self.leader);
        put_str(&mut out, &self.leader_url);
        out.extend_from_slice(&self.config_offset.to_be_bytes());
        let n = i32::try_from(by_connector.len()).unwrap_or(i32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for (c, ids) in by_connector {
            put_str(&mut out, c);
            let n = i32::try_from(ids.len()).unwrap_or(i32::MAX);
            out.extend_from_slice(&n.to_be_bytes());
            for id in ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DistError> {
        let mut r = Reader(bytes);
        check_version(r.i16()?)?;
        let mut a = Assignment {
            error: r.i16()?,
            leader: r.string()?,
            leader_url: r.string()?,
            config_offset: r.i64()?,
            ..Assignment::default()
        };
        for _ in 0..r.count()? {
            let connector = r.string()?;
            for _ in 0..r.count()? {
                match r.i32()? {
                    CONNECTOR_TASK => a.connectors.push(connector.clone()),
                    t => a.tasks.push((
                        connector.clone(),
                        u32::try_from(t).map_err(|_| {
                            DistError::Protocol(format!("bad task id {t} in an assignment"))
                        })?,
                    )),
                }
            }
        }
        Ok(a)
    }
}

/// One member's share of the work: connector objects and (connector, task id)s.
pub type Share = (Vec<String>, Vec<(String, u32)>);

/// The leader's eager assignment: every connector, then every task, dealt round-robin
/// over the members sorted by member id (Kafka's `EagerAssignor`). `work` lists each
/// connector with its task count.
pub fn assign(members: &[String], work: &[(String, u32)]) -> BTreeMap<String, Share> {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    let mut out: BTreeMap<String, Share> = sorted
        .iter()
        .map(|m| ((*m).clone(), (Vec::new(), Vec::new())))
        .collect();
    if sorted.is_empty() {
        return out;
    }
    let mut i = 0usize;
    for (c, _) in work {
        if let Some(slot) = out.get_mut(sorted[i % sorted.len()]) {
            slot.0.push(c.clone());
        }
        i += 1;
    }
    for (c, n) in work {
        for t in 0..*n {
            if let Some(slot) = out.get_mut(sorted[i % sorted.len()]) {
                slot.1.push((c.clone(), t));
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trip_and_layout() {
        let s = WorkerState {
            url: "http://h:8083/".into(),
            config_offset: 7,
        };
        let b = s.encode();
        assert_eq!(&b[..4], &[0, 0, 0, 14]);
        assert_eq!(&b[b.len() - 8..], &7i64.to_be_bytes());
        assert_eq!(WorkerState::decode(&b).unwrap(), s);
        assert!(WorkerState::decode(&b[..5]).is_err());
    }

    #[test]
    fn assignment_round_trip_with_connector_sentinel() {
        let a = Assignment {
            error: 0,
            leader: "w1".into(),
            leader_url: "http://a:1/".into(),
            config_offset: 42,
            connectors: vec!["src".into()],
            tasks: vec![("src".into(), 1), ("sink".into(), 0)],
        };
        let b = a.encode();
        let d = Assignment::decode(&b).unwrap();
        assert_eq!(d.connectors, vec!["src".to_string()]);
        let mut tasks = d.tasks.clone();
        tasks.sort();
        assert_eq!(tasks, vec![("sink".into(), 0), ("src".into(), 1)]);
        assert_eq!((d.leader.as_str(), d.config_offset), ("w1", 42));
        // A huge array count is refused, not allocated.
        let mut bad = vec![0, 0, 0, 0, 0, 0, 0, 0];
        bad.extend_from_slice(&0i64.to_be_bytes());
        bad.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(Assignment::decode(&bad).is_err());
    }

    #[test]
    fn round_robin_spreads_connectors_and_tasks() {
        let members = vec!["b".to_string(), "a".to_string()];
        let a = assign(&members, &[("x".into(), 3), ("y".into(), 1)]);
        assert_eq!(a["a"].0, vec!["x".to_string()]);
        assert_eq!(a["b"].0, vec!["y".to_string()]);
        assert_eq!(a["a"].1, vec![("x".to_string(), 0), ("x".to_string(), 2)]);
        assert_eq!(a["b"].1, vec![("x".to_string(), 1), ("y".to_string(), 0)]);
        assert!(assign(&[], &[("x".into(), 1)]).is_empty());
    }
}
