//! HTML pages, rendered on the server with maud: its `html!` macro is checked at compile
//! time and escapes every interpolated value, so names, keys, values and headers from
//! the cluster cannot inject markup. One module per page; `layout` holds the frame.

pub(crate) mod groups;
pub(crate) mod layout;
pub(crate) mod messages;
pub(crate) mod overview;
pub(crate) mod topics;
pub(crate) mod txns;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What may stay as-is in a path segment or query value; everything else is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// A topic or group name as a URL path segment (or query value).
pub(crate) fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub(crate) fn topic_href(t: &str) -> String {
    format!("/topics/{}", enc(t))
}

pub(crate) fn messages_href(t: &str, partition: i32) -> String {
    format!("/topics/{}/messages?partition={partition}", enc(t))
}

pub(crate) fn group_href(g: &str) -> String {
    format!("/groups/{}", enc(g))
}

pub(crate) fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}
