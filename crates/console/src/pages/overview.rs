//! The overview page: cluster id, controller, brokers, partition health.

use maud::{html, Markup};

use super::layout::page;
use crate::model::Overview;

pub(crate) fn render(o: &Overview) -> Markup {
    let health = |n: usize| if n == 0 { "ok" } else { "bad" };
    page(
        "Overview",
        "/",
        html! {
            h1 { "Cluster overview" }
            div.cards {
                div.card { span { "Cluster id" } b #cluster-id { (o.cluster_id.as_deref().unwrap_or("-")) } }
                div.card { span { "Controller" } b #controller {
                    @match o.controller { Some(c) => (c), None => "-" }
                } }
                div.card { span { "Brokers" } b #broker-count { (o.brokers.len()) } }
                div.card { span { "Topics" } b #topic-count { (o.topics) } }
                div.card { span { "Partitions" } b #partition-count { (o.partitions) } }
                div.card { span { "Offline partitions" } b #offline class=(health(o.offline)) { (o.offline) } }
                div.card { span { "Under-replicated" } b #under-replicated class=(health(o.under_replicated)) { (o.under_replicated) } }
            }
            @if let Some(note) = &o.note {
                p.muted { "Controller and racks " (note) }
            }
            h2 { "Brokers" }
            table #brokers {
                thead { tr { th { "Id" } th { "Address" } th { "Rack" } th { "Role" } } }
                tbody {
                    @for b in &o.brokers {
                        tr {
                            td { (b.id) }
                            td { (b.host) ":" (b.port) }
                            td { (b.rack.as_deref().unwrap_or("-")) }
                            td { @if o.controller == Some(b.id) { span.tag { "controller" } } }
                        }
                    }
                }
            }
        },
    )
}
