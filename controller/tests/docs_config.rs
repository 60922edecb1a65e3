//! Keeps docs/config.md true: its examples parse (or fail exactly as the text says), the spelt-out
//! defaults equal the real ones, and every key the parser knows is documented.

use wanmon::core::Config;
use wanmon::core::config::{GLOBAL_KEYS, LINK_KEYS, PLACEHOLDER_TOKEN, WEB_KEYS};

const DOC: &str = include_str!("../../docs/config.md");

/// Fenced blocks as (info string, body).
fn blocks() -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            blocks.push((info.trim().to_string(), body.join("\n")));
        }
    }
    blocks
}

fn parse(text: &str) -> Config {
    Config::from_json(text).unwrap_or_else(|errors| {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("documented example refused:\n{}\n{text}", errors.join("\n"))
    })
}

#[test]
fn valid_examples_parse() {
    let valid: Vec<_> = blocks()
        .into_iter()
        .filter(|(info, _)| info.starts_with("json") && info != "json invalid")
        .collect();
    assert!(valid.len() >= 4, "examples missing from docs/config.md");
    for (_, text) in valid {
        // The full example's token is a placeholder the parser refuses, as the text says.
        if text.contains(PLACEHOLDER_TOKEN) {
            let errors = Config::from_json(&text).expect_err("the placeholder token is refused");
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].to_string().ends_with("set a random token of your own"));
            parse(&text.replace(PLACEHOLDER_TOKEN, "q8J2vX0rT5mW9zL4nB7c"));
        } else {
            parse(&text);
        }
    }
}

#[test]
fn invalid_examples_fail_exactly_as_documented() {
    let all = blocks();
    let mut checked = 0;
    for (i, (info, text)) in all.iter().enumerate() {
        if info != "json invalid" {
            continue;
        }
        let (next_info, expected) =
            all.get(i + 1).expect("an invalid example is followed by its errors");
        assert_eq!(
            next_info, "text",
            "an invalid example is followed by a text block of its errors"
        );
        let errors = Config::from_json(text).expect_err("documented as invalid");
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(got.join("\n"), *expected);
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn spelt_out_defaults_are_the_defaults() {
    let find = |wanted: &str| {
        blocks()
            .into_iter()
            .find(|(info, _)| info == wanted)
            .unwrap_or_else(|| panic!("no {wanted} block"))
            .1
    };
    assert_eq!(parse(&find("json all-defaults")), parse(&find("json minimal")));
}

#[test]
fn every_key_is_documented_in_a_table() {
    for key in GLOBAL_KEYS.iter().chain(LINK_KEYS).chain(WEB_KEYS) {
        let row = format!("| `{key}` |");
        assert!(DOC.contains(&row), "docs/config.md has no table row for `{key}`");
    }
}
