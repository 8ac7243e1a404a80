//! The distributed-engine rules, checked on every SQL statement the server runs (`sql::ALL`) and on
//! the schema: each table carries `subject_key`; each primary or unique key includes it; each
//! statement on a table filters on it (or inserts it); no sequence, serial or identity column; and
//! no SQL text lives anywhere in the server's sources but `sql.rs` and `sql/*.sql`.

use consentkit_server::sql;

const TABLES: &[&str] = &[
    "events",
    "device_chain",
    "device_heads",
    "device_os",
    "subject_devices",
    "device_erasures",
    "erasures",
    "access_log",
    "access_heads",
];

fn tables_in(statement: &str) -> Vec<&'static str> {
    let lower = statement.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
    TABLES.iter().copied().filter(|t| words.contains(t)).collect()
}

/// The problems of one DML statement, empty when it follows the rules.
fn lint(name: &str, statement: &str) -> Vec<String> {
    let s = statement.to_lowercase();
    let mut problems = Vec::new();
    for banned in ["nextval", "serial", "identity", "sequence", "currval", "setval", "now()", "clock_timestamp"] {
        if s.contains(banned) {
            problems.push(format!("{name}: uses {banned} (no global order and no server clock in SQL)"));
        }
    }
    let tables = tables_in(&s);
    if tables.is_empty() {
        return problems;
    }
    let all_shards = s.contains("-- all shards:");
    if s.trim_start().starts_with("insert") {
        let columns = s.split('(').nth(1).unwrap_or_default().split(')').next().unwrap_or_default();
        if !columns.split(',').any(|c| c.trim() == "subject_key") {
            problems.push(format!("{name}: an INSERT must write subject_key"));
        }
        if let Some(conflict) = s.split("on conflict").nth(1) {
            let target = conflict.split(')').next().unwrap_or_default();
            if !target.contains("subject_key") {
                problems.push(format!("{name}: ON CONFLICT must target a key that includes subject_key"));
            }
        }
        if s.contains(" select ") && !s.contains("from unnest(") {
            problems.push(format!("{name}: INSERT … SELECT must read from parameters (unnest), not from another shard"));
        }
    } else if !all_shards {
        let filter = s.split(" where ").nth(1).unwrap_or_default();
        if !(filter.contains("subject_key = $") || filter.contains("subject_key = any($")) {
            problems.push(format!("{name}: every query must filter on subject_key = $n (the distribution column)"));
        }
    } else if tables.contains(&"events") {
        problems.push(format!("{name}: a query on events may never read all shards"));
    }
    problems
}

#[test]
fn every_statement_filters_on_the_distribution_column() {
    let problems: Vec<String> = sql::ALL.iter().flat_map(|(name, s)| lint(name, s)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(sql::ALL.iter().filter(|(_, s)| tables_in(s).contains(&"events")).count() >= 4, "the events statements are linted");
}

#[test]
fn the_lint_catches_what_it_is_for() {
    assert!(!lint("x", "SELECT * FROM events WHERE device = $1").is_empty());
    assert!(!lint("x", "SELECT * FROM events ORDER BY at -- all shards: no").is_empty());
    assert!(!lint("x", "INSERT INTO events (device, seq) VALUES ($1, $2)").is_empty());
    assert!(!lint("x", "INSERT INTO device_os (subject_key, device) VALUES ($1, $2) ON CONFLICT (device) DO NOTHING").is_empty());
    assert!(!lint("x", "SELECT nextval('s') FROM events WHERE subject_key = $1").is_empty());
    assert!(!lint("x", "DELETE FROM events WHERE at < $1").is_empty());
    assert!(lint("x", "DELETE FROM events WHERE subject_key = $1").is_empty());
}

#[test]
fn every_table_is_keyed_by_the_subject_pseudonym_with_no_sequence() {
    let schema = sql::SCHEMA.to_lowercase();
    let tables: Vec<&str> = schema.split("create table if not exists ").skip(1).collect();
    assert_eq!(tables.len(), TABLES.len(), "the lint knows every table");
    for t in tables {
        let name = t.split_whitespace().next().unwrap();
        let body = t.split(");").next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(TABLES.contains(&name), "unknown table {name}");
        assert!(body.contains("subject_key text not null"), "{name} has no subject_key");
        let pk = body.split("primary key (").nth(1).unwrap_or_else(|| panic!("{name} has no primary key")).split(')').next().unwrap();
        assert!(pk.split(',').any(|c| c.trim() == "subject_key"), "{name}: primary key ({pk}) lacks subject_key");
        for unique in body.split("unique").skip(1) {
            assert!(unique.split(')').next().unwrap().contains("subject_key"), "{name}: a unique key lacks subject_key");
        }
        for banned in ["serial", "identity", "sequence", "nextval", "references"] {
            assert!(!body.contains(banned), "{name}: uses {banned}");
        }
    }
    for index in schema.lines().filter(|l| l.starts_with("create index") || l.starts_with("create unique index")) {
        assert!(index.contains("(subject_key"), "an index does not lead with subject_key: {index}");
    }
}

#[test]
fn no_sql_is_written_outside_sql_rs() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "sql.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for keyword in [
            "\"SELECT ",
            "\"INSERT ",
            "\"UPDATE ",
            "\"DELETE ",
            "\"CREATE ",
            "\"ALTER ",
            "\"DROP ",
            "\"TRUNCATE",
            "batch_execute(\"",
            "query(\"",
            "execute(\"",
        ] {
            assert!(!text.contains(keyword), "{} holds SQL ({keyword}): put it in sql.rs so it is linted", path.display());
        }
    }
}

#[test]
fn the_device_erase_function_filters_on_the_distribution_column() {
    let text = sql::FUNCTIONS.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let body = text.split_once(" begin ").unwrap().1.rsplit_once(" end ").unwrap().0;
    let statements: Vec<String> = body
        .split(';')
        .filter(|s| !tables_in(s).is_empty())
        .map(|s| s.replace("p_device_key", "$1").replace("any(keys)", "any($2)"))
        .collect();
    assert!(statements.len() >= 3, "the function's statements are linted: {statements:?}");
    for s in &statements {
        for filter in s.split(" where ").skip(1) {
            assert!(
                filter.contains("subject_key = $")
                    || filter.contains("subject_key = any($")
                    || filter.contains("subject_key = sd.subject_key"),
                "a statement of consentkit_device_erase does not filter on subject_key: {s}"
            );
        }
        assert!(!s.contains("nextval") && !s.contains("now()"), "{s}");
    }
    assert!(text.contains("security definer") && text.contains("set search_path"), "runs with a fixed search_path");
}
