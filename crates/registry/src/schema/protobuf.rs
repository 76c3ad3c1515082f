//! Protobuf (partial): schemas are stored after a syntax sanity check (balanced
//! braces, at least one message, enum or service definition); no compatibility rules
//! are applied, so every change counts as compatible.

pub(super) fn parse(text: &str) -> Result<String, String> {
    let mut depth: i64 = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced '}'".to_string());
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '{'".to_string());
    }
    let has_definition = text
        .split_whitespace()
        .any(|w| matches!(w, "message" | "enum" | "service") || w.starts_with("syntax"));
    if !has_definition {
        return Err("no message, enum, service or syntax declaration".to_string());
    }
    Ok(text.to_string())
}

pub(super) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_sanity() {
        assert!(parse("syntax = \"proto3\"; message A { int32 x = 1; }").is_ok());
        assert!(parse("message A { int32 x = 1;").is_err());
        assert!(parse("hello").is_err());
    }
}
