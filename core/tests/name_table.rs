//! The name sanitizer accepts exactly the characters the schema's `name`
//! pattern accepts, checked code point by code point with the real validator.

use serde_json::{Value, json};
use xray_emitter::testing::is_name_char;

#[test]
fn name_characters_match_the_schema_pattern() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/segment-schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let single = json!({
        "type": "string",
        "pattern": schema["properties"]["name"]["pattern"].clone(),
    });
    let validator = jsonschema::draft4::new(&single).unwrap();
    let mut mismatches = Vec::new();
    for c in (0u32..=0x10ffff).filter_map(char::from_u32) {
        let valid = validator.is_valid(&Value::String(c.to_string()));
        if valid != is_name_char(c) {
            mismatches.push(format!("U+{:04X} schema={valid}", c as u32));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches: {:?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(20)]
    );
}

#[test]
fn the_copy_of_the_schema_is_the_shared_one() {
    let ours = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/segment-schema.json"
    ))
    .unwrap();
    // The steering repository's copy sits beside this checkout when present.
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/xray/segment-schema.json"
    );
    if let Ok(theirs) = std::fs::read(shared) {
        assert_eq!(
            ours, theirs,
            "core/data/segment-schema.json differs from shared/xray/"
        );
    }
}
