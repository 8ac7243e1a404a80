//! The `consentkit-server` command line: help and version on stdout with exit 0, an unknown
//! command or a missing flag named on stderr with exit 2.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_consentkit-server")).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn help_and_version_succeed_and_mistakes_are_named() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("consentkit-server serve --config FILE") && out.contains("migrate"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!((code, out.trim()), (Some(0), format!("consentkit-server {}", env!("CARGO_PKG_VERSION")).as_str()));
    let (code, _, err) = run(&["serv"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown command 'serv'") && err.contains("usage:"), "{err}");
    let (code, _, err) = run(&["serve"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing --config"), "{err}");
    let (code, _, err) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("usage:"), "{err}");
}
