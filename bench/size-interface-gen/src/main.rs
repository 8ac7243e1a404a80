//! `size-interface-gen generate LIB OUT_DIR`: writes OUT_DIR/src/lib.rs, the interface floor of
//! the uniffi library LIB (see the crate's lib.rs).
//! `size-interface-gen compare OURS FLOOR`: the uniffi metadata of the two libraries must be equal
//! (the same items, signatures, checksums and docstrings); prints each difference and fails if not.
use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use camino::Utf8PathBuf;
use uniffi_bindgen::macro_metadata::extract_from_library;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("size-interface-gen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn metadata(lib: &str) -> Result<Vec<uniffi_meta::Metadata>> {
    extract_from_library(&Utf8PathBuf::from(lib)).with_context(|| format!("reading the uniffi metadata of {lib}"))
}

fn run(args: Vec<String>) -> Result<()> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["generate", lib, out] => {
            let generated = size_interface_gen::generate(&metadata(lib)?)?;
            let src = std::path::Path::new(out).join("src");
            std::fs::create_dir_all(&src)?;
            std::fs::write(src.join("lib.rs"), generated.lib_rs)?;
            println!("{}", generated.crate_name);
            Ok(())
        }
        ["compare", ours, floor] => {
            let set = |lib| -> Result<BTreeSet<String>> { Ok(metadata(lib)?.iter().map(|m| format!("{m:?}")).collect()) };
            let (a, b) = (set(ours)?, set(floor)?);
            if a == b {
                println!("{} metadata items, equal", a.len());
                return Ok(());
            }
            for only in a.difference(&b) {
                eprintln!("only in {ours}: {only}");
            }
            for only in b.difference(&a) {
                eprintln!("only in {floor}: {only}");
            }
            bail!("the uniffi metadata of {ours} and {floor} differ (above)")
        }
        _ => bail!("usage: size-interface-gen generate LIB OUT_DIR | compare OURS FLOOR"),
    }
}
