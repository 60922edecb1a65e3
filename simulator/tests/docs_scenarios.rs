//! Keeps docs/scenarios.md true: its example scenario parses and meets its own expectations in
//! the replay, its broken example fails exactly as the page says, every key the scenario parser
//! knows is documented, and the summary table's columns are the ones the page explains.

use std::path::Path;
use wanmon_sim::scenario::Scenario;
use wanmon_sim::{replay, report};

const DOC: &str = include_str!("../../docs/scenarios.md");

/// Fenced blocks as (info string, body).
fn blocks() -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            blocks.push((info.trim().to_string(), body.join("\n") + "\n"));
        }
    }
    blocks
}

fn errors(text: &str) -> Vec<String> {
    match Scenario::parse(Path::new("bad.yaml"), text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_example_parses_and_meets_its_expectations() {
    let examples: Vec<String> =
        blocks().into_iter().filter(|(info, _)| info == "yaml").map(|(_, body)| body).collect();
    assert!(!examples.is_empty(), "docs/scenarios.md lost its example");
    for text in examples {
        let scenario = Scenario::parse(Path::new("example.yaml"), &text)
            .unwrap_or_else(|e| panic!("the documented example is refused: {e:?}"));
        let record = replay::run(&scenario, 1.0);
        assert!(record.unmet().is_empty(), "the example misses: {:?}", record.unmet());
    }
}

#[test]
fn the_broken_example_fails_exactly_as_documented() {
    let all = blocks();
    let position = all.iter().position(|(info, _)| info == "yaml invalid").expect("an example");
    let (info, expected) = all.get(position + 1).expect("followed by its errors");
    assert_eq!(info, "text", "the broken example is followed by a text block of its errors");
    assert_eq!(errors(&all[position].1).join("\n") + "\n", *expected);
}

/// The keys the parser lists when it meets an unknown one at some place in a file.
fn known_keys(text: &str) -> Vec<String> {
    let error = errors(text).join("\n");
    let list = error
        .split_once("expected one of ")
        .and_then(|(_, rest)| rest.split_once(" at line"))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no list of keys in: {error}"));
    list.split(", ").map(String::from).collect()
}

#[test]
fn every_key_the_parser_knows_is_documented() {
    let links = "links: [{name: wan, latency_ms: 1}]\n";
    let places = [
        format!("duration_s: 60\nbogus: 1\n{links}expect: [{{final: wan}}]\n"),
        "duration_s: 60\nlinks: [{name: wan, latency_ms: 1, bogus: 1}]\nexpect: [{final: wan}]\n"
            .to_string(),
        format!(
            "duration_s: 60\n{links}timeline: [{{at_s: 1, link: wan, bogus: 1}}]\nexpect: [{{final: wan}}]\n"
        ),
        format!("duration_s: 60\n{links}expect: [{{bogus: wan}}]\n"),
        format!("duration_s: 60\n{links}expect: [{{switch: {{to: wan, bogus: 1}}}}]\n"),
        format!("duration_s: 60\n{links}expect: [{{no_switch: {{bogus: 1}}}}]\n"),
    ];
    let mut checked = 0;
    for text in &places {
        for key in known_keys(text) {
            let explained = DOC.contains(&format!("`{key}`")) || DOC.contains(&format!(" {key}: "));
            assert!(explained, "docs/scenarios.md does not explain `{key}`");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} keys found: the parser's messages changed?");
}

#[test]
fn the_summary_table_has_the_documented_columns() {
    let scenario = Scenario::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/01-hard-outage.yaml"
    )))
    .expect("library scenario");
    let table = report::table(&[replay::run(&scenario, 1.0)]);
    let header = table.lines().next().unwrap_or_default();
    let section = DOC.split("## The summary table").nth(1).expect("the section");
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(documented.len() >= 5);
    for column in documented {
        assert!(header.contains(column), "the table has no column {column:?}: {header}");
    }
}
