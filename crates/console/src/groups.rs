//! Consumer groups: the list (ListGroups), a group's members and assignments
//! (DescribeGroups) and its committed offsets against end offsets, i.e. lag. All
//! through librdkafka; blocking, so callers run these on the blocking pool.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::cluster::Cluster;
use crate::error::{ConsoleError, Result};
use crate::model::{GroupDetail, GroupOffset, GroupSummary, Member};

impl Cluster {
    pub(crate) fn group_list(&self) -> Result<Vec<GroupSummary>> {
        let list = self
            .meta
            .fetch_group_list(None, self.timeout)
            .map_err(ConsoleError::kafka("cannot list groups"))?;
        let mut groups: Vec<_> = list
            .groups()
            .iter()
            .map(|g| GroupSummary {
                name: g.name().to_string(),
                state: g.state().to_string(),
                protocol_type: g.protocol_type().to_string(),
                members: g.members().len(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// A consumer whose group.id is `group`, only to read its committed offsets: it
    /// never subscribes, so it never joins the group.
    fn offsets_reader(&self, group: &str) -> Result<BaseConsumer> {
        let mut cfg = self.config.clone();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false");
        cfg.create()
            .map_err(ConsoleError::kafka("cannot create client"))
    }

    /// Committed offset, end offset and lag for every partition the group has an offset
    /// for (any non-internal topic).
    pub(crate) fn group_offsets(&self, group: &str) -> Result<Vec<GroupOffset>> {
        let reader = self.offsets_reader(group)?;
        let md = self.metadata(None)?;
        let mut tpl = TopicPartitionList::new();
        for t in md.topics().iter().filter(|t| !t.name().starts_with("__")) {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
        if tpl.count() == 0 {
            return Ok(Vec::new());
        }
        let committed = reader
            .committed_offsets(tpl, self.timeout)
            .map_err(ConsoleError::kafka("cannot fetch committed offsets"))?;
        let mut out = Vec::new();
        for e in committed.elements() {
            if let Offset::Offset(committed) = e.offset() {
                let (_, end) = self.watermarks(e.topic(), e.partition())?;
                out.push(GroupOffset {
                    topic: e.topic().to_string(),
                    partition: e.partition(),
                    committed,
                    end,
                    lag: end.saturating_sub(committed).max(0),
                    member: None,
                });
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    pub(crate) fn group(&self, name: &str) -> Result<GroupDetail> {
        let list = self
            .meta
            .fetch_group_list(Some(name), self.timeout)
            .map_err(ConsoleError::kafka("cannot describe group"))?;
        let Some(g) = list.groups().iter().find(|g| g.name() == name) else {
            return Err(ConsoleError::NotFound(format!("group {name}")));
        };
        if g.state() == "Dead" {
            return Err(ConsoleError::NotFound(format!("group {name}")));
        }
        let consumer_protocol = g.protocol_type() == "consumer" || g.protocol_type().is_empty();
        let members: Vec<Member> = g
            .members()
            .iter()
            .map(|m| Member {
                id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                host: m.client_host().to_string(),
                assignment: m
                    .assignment()
                    .filter(|_| consumer_protocol)
                    .map(parse_assignment)
                    .unwrap_or_default(),
            })
            .collect();
        let mut offsets = self.group_offsets(name)?;
        for o in &mut offsets {
            o.member = members
                .iter()
                .find(|m| {
                    m.assignment
                        .iter()
                        .any(|(t, ps)| *t == o.topic && ps.contains(&o.partition))
                })
                .map(|m| m.id.clone());
        }
        Ok(GroupDetail {
            name: name.to_string(),
            state: g.state().to_string(),
            protocol: g.protocol().to_string(),
            total_lag: offsets.iter().map(|o| o.lag).sum(),
            members,
            offsets,
        })
    }
}

/// Topics and partitions in a consumer-protocol assignment (Kafka's
/// `ConsumerProtocolAssignment`: version, then [topic, [partition]], then user data).
/// Malformed bytes give what could be read.
pub(crate) fn parse_assignment(b: &[u8]) -> Vec<(String, Vec<i32>)> {
    let mut r = Reader { b, pos: 2 };
    let mut out = Vec::new();
    let Some(topics) = r.i32() else {
        return out;
    };
    for _ in 0..topics.max(0) {
        let Some(len) = r.i16() else { break };
        let Some(name) = r.take(usize::try_from(len).unwrap_or(0)) else {
            break;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let Some(n) = r.i32() else { break };
        let mut parts = Vec::new();
        for _ in 0..n.max(0) {
            match r.i32() {
                Some(p) => parts.push(p),
                None => break,
            }
        }
        out.push((name, parts));
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2)?.try_into().ok().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)?.try_into().ok().map(i32::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_assignment;

    #[test]
    fn assignments_parse_and_truncated_bytes_do_not_panic() {
        // version 0, 1 topic "ab" with partitions [0, 2], no user data.
        let mut b = vec![0, 0, 0, 0, 0, 1, 0, 2, b'a', b'b', 0, 0, 0, 2];
        b.extend([0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(parse_assignment(&b), vec![("ab".to_string(), vec![0, 2])]);
        for cut in 0..b.len() {
            let _ = parse_assignment(&b[..cut]);
        }
        assert_eq!(
            parse_assignment(&b[..b.len() - 2]),
            vec![("ab".to_string(), vec![0])]
        );
    }
}
