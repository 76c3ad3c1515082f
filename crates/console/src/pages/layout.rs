//! The frame around every page (navigation, style) and the error page.

use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::error::ConsoleError;

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f5f6f8}
header{background:#1d2433;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.4rem;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a:hover,header a.on{color:#fff}
header .brand{font-weight:700;color:#fff;margin-right:1rem}
main{padding:1rem 1.4rem;max-width:1200px}
h1{font-size:1.35rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e6ec;vertical-align:top}
th{background:#eef0f4;font-weight:600}
.cards{display:flex;gap:.8rem;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e3e6ec;border-radius:6px;padding:.6rem 1rem;min-width:8rem}
.card b{display:block;font-size:1.4rem}.card span{color:#5b6475;font-size:.8rem}
.bad{color:#b42318;font-weight:600}.ok{color:#067647}
pre{margin:0;white-space:pre-wrap;word-break:break-all;font-size:.82rem}
form.inline{display:flex;gap:.6rem;align-items:end;flex-wrap:wrap;background:#fff;padding:.6rem;border:1px solid #e3e6ec;border-radius:6px}
form label{display:flex;flex-direction:column;font-size:.8rem;color:#5b6475}
input,select,button{font:inherit;padding:.25rem .4rem}
button{background:#1d4ed8;color:#fff;border:0;border-radius:4px;padding:.35rem .9rem;cursor:pointer}
.error{background:#fef3f2;border:1px solid #fecdca;padding:1rem;border-radius:6px}
.muted{color:#5b6475}.tag{font-size:.75rem;background:#eef0f4;border-radius:3px;padding:0 .3rem}
svg.plot{background:#fff;border:1px solid #e3e6ec}
"#;

/// Navigation entries: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/topics", "Topics"),
    ("/groups", "Consumer groups"),
    ("/transactions", "Transactions"),
];

pub(crate) fn page(title: &str, active: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Gregor console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "Gregor console" }
                    @for (path, label) in NAV {
                        a href=(path) class=[(*path == active).then_some("on")] { (label) }
                    }
                }
                main { (body) }
            }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let title = match &self {
            ConsoleError::NotFound(_) => "Not found",
            ConsoleError::BadRequest(_) => "Bad request",
            ConsoleError::Internal(_) | ConsoleError::Listen { .. } => "Internal error",
            ConsoleError::Kafka { .. } | ConsoleError::Wire(_) | ConsoleError::Broker { .. } => {
                "Cluster error"
            }
        };
        tracing::debug!("error page: {self}");
        let body = html! {
            h1 { (title) }
            div.error #error {
                p { (self.to_string()) }
                p.muted { "The console talks to the cluster only through the Kafka protocol; "
                    "if the brokers are down, this page comes back once they are up." }
            }
        };
        (self.status(), page(title, "", body)).into_response()
    }
}
