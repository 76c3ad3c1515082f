//! The message browser page: a form (partition, start offset or time, count, key
//! filter) and the records it found.

use maud::{html, Markup};

use super::layout::page;
use super::topic_href;
use crate::browse::format_time;
use crate::model::MessagePage;

/// The form's fields as the user left them, to fill the form in again.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct BrowseForm {
    pub(crate) partition: Option<String>,
    /// An offset; empty means "from the beginning".
    pub(crate) offset: Option<String>,
    /// A time (RFC 3339 or epoch ms); used when no offset is given.
    pub(crate) timestamp: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) key: Option<String>,
}

pub(crate) fn render(p: &MessagePage, form: &BrowseForm, limit: usize) -> Markup {
    page(
        &p.topic,
        "/topics",
        html! {
            h1 { "Messages in " a href=(topic_href(&p.topic)) { (p.topic) } }
            form.inline #browse method="get" {
                label { "Partition"
                    select name="partition" {
                        @for i in 0..p.partitions {
                            option value=(i) selected[i32::try_from(i).ok() == Some(p.partition)] { (i) }
                        }
                    }
                }
                label { "From offset" input name="offset" type="number" placeholder="beginning" value=[form.offset.as_deref().filter(|s| !s.is_empty())]; }
                label { "or from time" input name="timestamp" placeholder="2026-12-03T06:30:00Z" value=[form.timestamp.as_deref().filter(|s| !s.is_empty())]; }
                label { "Count" input name="limit" type="number" min="1" max="500" value=(limit); }
                label { "Key contains" input name="key" value=[form.key.as_deref().filter(|s| !s.is_empty())]; }
                button type="submit" { "Show" }
            }
            p.muted #range {
                "Partition " (p.partition) ": offsets " (p.low) " to " (p.high) "; read " (p.scanned)
                " from offset " (p.start) ", showing " (p.messages.len()) "."
            }
            table #messages {
                thead { tr { th { "Offset" } th { "Timestamp" } th { "Key" } th { "Value" } th { "Headers" } } }
                tbody {
                    @for m in &p.messages {
                        tr.message data-offset=(m.offset) {
                            td.offset { (m.offset) }
                            td.timestamp { @if let Some(ts) = m.timestamp { (format_time(ts)) } }
                            td.key { @match &m.key { Some(k) => (k), None => span.muted { "null" } } }
                            td.value {
                                @match &m.value {
                                    Some(v) => pre class=[m.value_is_json.then_some("json")] { (v) },
                                    None => span.muted { "null" },
                                }
                            }
                            td.headers {
                                @for (k, v) in &m.headers {
                                    div.header { b { (k) } ": " (v.as_deref().unwrap_or("null")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
