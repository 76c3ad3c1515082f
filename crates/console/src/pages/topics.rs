//! The topic list with its create form, and a topic's partitions and configs.

use maud::{html, Markup};

use super::layout::page;
use super::{ids, messages_href, topic_href};
use crate::model::{TopicDetail, TopicSummary};

pub(crate) fn list(topics: &[TopicSummary]) -> Markup {
    page(
        "Topics",
        "/topics",
        html! {
            h1 { "Topics" }
            form.inline #create-topic method="post" action="/topics" {
                label { "Name" input name="name" required pattern="[a-zA-Z0-9._-]+" maxlength="249"; }
                label { "Partitions" input name="partitions" type="number" min="1" value="1"; }
                label { "Replication factor" input name="replication_factor" type="number" min="1" value="1"; }
                button type="submit" { "Create topic" }
            }
            h2 { (topics.len()) " topics" }
            table #topics {
                thead { tr { th { "Name" } th { "Partitions" } th { "Replication" } th { "Under-replicated" } th { "Offline" } th {} } }
                tbody {
                    @for t in topics {
                        tr data-topic=(t.name) {
                            td { a href=(topic_href(&t.name)) { (t.name) } @if t.internal { " " span.tag { "internal" } } }
                            td { (t.partitions) }
                            td { (t.replication_factor) }
                            td class=[(t.under_replicated > 0).then_some("bad")] { (t.under_replicated) }
                            td class=[(t.offline > 0).then_some("bad")] { (t.offline) }
                            td { a href=(messages_href(&t.name, 0)) { "messages" } }
                        }
                    }
                }
            }
        },
    )
}

pub(crate) fn detail(t: &TopicDetail) -> Markup {
    let records: i64 = t.partitions.iter().map(|p| p.high - p.low).sum();
    page(
        &t.name,
        "/topics",
        html! {
            h1 { "Topic " span #topic-name { (t.name) } }
            p { (t.partitions.len()) " partitions, " (records) " records retained. "
                a href=(messages_href(&t.name, 0)) { "Browse messages" } }
            h2 { "Partitions" }
            table #partitions {
                thead { tr { th { "Partition" } th { "Leader" } th { "Replicas" } th { "ISR" } th { "Low watermark" } th { "High watermark" } th { "Size" } th {} } }
                tbody {
                    @for p in &t.partitions {
                        tr {
                            td { (p.id) }
                            td class=[(p.leader < 0).then_some("bad")] { @if p.leader < 0 { "offline" } @else { (p.leader) } }
                            td { (ids(&p.replicas)) }
                            td class=[(p.isr.len() < p.replicas.len()).then_some("bad")] { (ids(&p.isr)) }
                            td.low { (p.low) }
                            td.high { (p.high) }
                            td.size { @match p.size { Some(b) => { (b) " B" }, None => "-" } }
                            td { a href=(messages_href(&t.name, p.id)) { "messages" } }
                        }
                    }
                }
            }
            h2 { "Configs" }
            table #configs {
                thead { tr { th { "Name" } th { "Value" } th { "Source" } } }
                tbody {
                    @for c in &t.configs {
                        tr {
                            td { (c.name) }
                            td { @if c.sensitive { "(sensitive)" } @else { (c.value.as_deref().unwrap_or("")) } }
                            td.muted { (c.source) }
                        }
                    }
                }
            }
        },
    )
}
