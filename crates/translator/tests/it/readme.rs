//! README.md's model-family table states, for every family, the unified fields it
//! honours. This checks each row against the family's own `params()`, so the table
//! cannot drift from the code.

use std::fs;
use std::path::PathBuf;

use translator::{FAMILIES, FamilyRef, Param, StopMode};

/// The "unified fields honoured" cell a family's row must have.
fn fields_cell(family: FamilyRef) -> String {
    let mut fields: Vec<String> = match family {
        FamilyRef::Text(_) => vec!["prompt, messages".to_owned()],
        FamilyRef::Embedding(_) => vec!["input".to_owned()],
        FamilyRef::Image(_) => vec!["prompt".to_owned()],
    };
    for param in family.params() {
        let name = param.field_name();
        let emulated = matches!(family, FamilyRef::Text(f) if f.stop_mode() == StopMode::Emulated);
        if *param == Param::Stop && emulated {
            fields.push(format!("{name} (emulated)"));
        } else {
            fields.push(name.to_owned());
        }
    }
    fields.join(", ")
}

#[test]
fn readme_table_lists_every_family_with_the_fields_it_honours() {
    let readme_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = fs::read_to_string(&readme_path).unwrap();
    let mut problems = Vec::new();
    for &family in FAMILIES {
        let prefix = format!("| `{}` |", family.id());
        let Some(row) = readme.lines().find(|line| line.starts_with(&prefix)) else {
            problems.push(format!(
                "no row for `{}`; expected fields: {}",
                family.id(),
                fields_cell(family)
            ));
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        let expected = fields_cell(family);
        if cells.last() != Some(&expected.as_str()) {
            problems
                .push(format!("`{}`: last cell should be `{expected}`, row is {row}", family.id()));
        }
        if cells.get(1) != Some(&family.kind().as_str()) {
            problems.push(format!("`{}`: second cell should be its kind", family.id()));
        }
    }
    assert!(problems.is_empty(), "README.md model-family table:\n{}", problems.join("\n"));
}
