//! Transactions: every transactional id the coordinators know, with state and
//! partitions.

use maud::{html, Markup};

use super::layout::page;
use crate::browse::format_time;
use crate::model::Transaction;

pub(crate) fn render(txns: &[Transaction]) -> Markup {
    page(
        "Transactions",
        "/transactions",
        html! {
            h1 { "Transactions" }
            table #transactions {
                thead { tr { th { "Transactional id" } th { "State" } th { "Producer id" } th { "Epoch" }
                    th { "Coordinator" } th { "Timeout" } th { "Started" } th { "Partitions" } } }
                tbody {
                    @for t in txns {
                        tr {
                            td { (t.transactional_id) }
                            td { (t.state) }
                            td { (t.producer_id) }
                            td { (t.producer_epoch) }
                            td { (t.coordinator) }
                            td { (t.timeout_ms) " ms" }
                            td { @if t.start_ms >= 0 { (format_time(t.start_ms)) } @else { "-" } }
                            td { @for (topic, ps) in &t.partitions { div { (topic) " " (super::ids(ps)) } } }
                        }
                    }
                }
            }
            @if txns.is_empty() { p.muted { "No transactional producers." } }
        },
    )
}
