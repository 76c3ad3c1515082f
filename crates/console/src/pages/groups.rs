//! Consumer groups: the list, and a group's members, offsets and lag-over-time plot.
//! The group page refreshes its `#live` part in place with a small fetch loop.

use maud::{html, Markup, PreEscaped};

use super::layout::page;
use super::{group_href, topic_href};
use crate::lag::Sample;
use crate::model::{GroupDetail, GroupSummary};

pub(crate) fn list(groups: &[GroupSummary]) -> Markup {
    page(
        "Consumer groups",
        "/groups",
        html! {
            h1 { "Consumer groups" }
            table #groups {
                thead { tr { th { "Group" } th { "State" } th { "Type" } th { "Members" } } }
                tbody {
                    @for g in groups {
                        tr data-group=(g.name) {
                            td { a href=(group_href(&g.name)) { (g.name) } }
                            td { (g.state) }
                            td { (g.protocol_type) }
                            td { (g.members) }
                        }
                    }
                }
            }
            @if groups.is_empty() { p.muted { "No consumer groups." } }
        },
    )
}

/// Re-fetches the page every `data-refresh-ms` and swaps in its `#live` element.
const REFRESH_JS: &str = r#"
(function(){
  const live = document.getElementById('live');
  const every = Number(live.dataset.refreshMs) || 2000;
  async function tick(){
    try {
      const r = await fetch(location.href, {cache: 'no-store'});
      if (r.ok) {
        const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
        const fresh = doc.getElementById('live');
        if (fresh) document.getElementById('live').replaceWith(fresh);
      }
    } catch (e) {}
    setTimeout(tick, every);
  }
  setTimeout(tick, every);
})();
"#;

pub(crate) fn detail(g: &GroupDetail, history: &[Sample], refresh_ms: u64) -> Markup {
    page(
        &g.name,
        "/groups",
        html! {
            h1 { "Consumer group " span #group-name { (g.name) } }
            div #live data-refresh-ms=(refresh_ms) {
                div.cards {
                    div.card { span { "State" } b #group-state { (g.state) } }
                    div.card { span { "Members" } b #member-count { (g.members.len()) } }
                    div.card { span { "Total lag" } b #total-lag { (g.total_lag) } }
                    div.card { span { "Assignor" } b { (if g.protocol.is_empty() { "-" } else { &g.protocol }) } }
                }
                h2 { "Lag over time" }
                (plot(history))
                h2 { "Members" }
                table #members {
                    thead { tr { th { "Member" } th { "Client" } th { "Host" } th { "Assignment" } } }
                    tbody {
                        @for m in &g.members {
                            tr {
                                td { (m.id) }
                                td { (m.client_id) }
                                td { (m.host) }
                                td { @for (t, ps) in &m.assignment { div { (t) " " (super::ids(ps)) } } }
                            }
                        }
                    }
                }
                @if g.members.is_empty() { p.muted { "No active members." } }
                h2 { "Offsets" }
                table #offsets {
                    thead { tr { th { "Topic" } th { "Partition" } th { "Committed" } th { "End" } th { "Lag" } th { "Member" } } }
                    tbody {
                        @for o in &g.offsets {
                            tr {
                                td { a href=(topic_href(&o.topic)) { (o.topic) } }
                                td { (o.partition) }
                                td.committed { (o.committed) }
                                td.end { (o.end) }
                                td.lag { (o.lag) }
                                td { (o.member.as_deref().unwrap_or("-")) }
                            }
                        }
                    }
                }
            }
            script { (PreEscaped(REFRESH_JS)) }
        },
    )
}

const W: f64 = 640.0;
const H: f64 = 180.0;
const PAD: f64 = 36.0;

/// The samples as `x,y` pairs inside the plot area: time left to right, lag bottom to
/// top, scaled so the largest lag touches the top.
pub(crate) fn points(samples: &[Sample]) -> String {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return String::new();
    };
    let span = (last.at_ms - first.at_ms).max(1) as f64;
    let top = samples.iter().map(|s| s.lag).max().unwrap_or(0).max(1) as f64;
    samples
        .iter()
        .map(|s| {
            let x = PAD + (s.at_ms - first.at_ms) as f64 / span * (W - 2.0 * PAD);
            let y = H - PAD / 2.0 - s.lag as f64 / top * (H - PAD);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn plot(samples: &[Sample]) -> Markup {
    let top = samples.iter().map(|s| s.lag).max().unwrap_or(0);
    let secs = match (samples.first(), samples.last()) {
        (Some(f), Some(l)) => (l.at_ms - f.at_ms) / 1000,
        _ => 0,
    };
    let base = H - PAD / 2.0;
    html! {
        svg.plot #lag-plot width=(W) height=(H) viewBox={"0 0 " (W) " " (H)}
            role="img" aria-label="total lag over time" data-samples=(samples.len())
            data-peak=(top) data-last=[samples.last().map(|s| s.lag)] {
            line x1=(PAD) y1=(base) x2=(W - PAD) y2=(base) stroke="#98a2b3" {}
            line x1=(PAD) y1=(PAD / 2.0) x2=(PAD) y2=(base) stroke="#98a2b3" {}
            text x="4" y=(PAD / 2.0 + 4.0) font-size="11" fill="#5b6475" { (top) }
            text x="4" y=(base) font-size="11" fill="#5b6475" { "0" }
            text x=(W - PAD) y=(H - 2.0) font-size="11" fill="#5b6475" text-anchor="end" {
                "last " (secs) " s, " (samples.len()) " samples"
            }
            @if samples.is_empty() {
                text x=(W / 2.0) y=(H / 2.0) font-size="13" fill="#5b6475" text-anchor="middle" { "no samples yet" }
            } @else {
                polyline #lag-line points=(points(samples)) fill="none" stroke="#1d4ed8" stroke-width="2" {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_span_the_plot_and_peak_at_the_top() {
        let s = [
            Sample {
                at_ms: 1000,
                lag: 0,
            },
            Sample {
                at_ms: 2000,
                lag: 10,
            },
            Sample {
                at_ms: 3000,
                lag: 5,
            },
        ];
        assert_eq!(points(&s), "36.0,162.0 320.0,18.0 604.0,90.0");
        assert_eq!(points(&[]), "");
        // One sample: no division by zero.
        assert_eq!(points(&s[..1]), "36.0,162.0");
    }
}
