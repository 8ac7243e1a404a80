//! `cargo run -p uniffi-bindgen -- generate target/debug/libconsentkit_ffi.so --language kotlin --out-dir DIR`
//! A separate crate so that building it does not change the features of the shipped library.
fn main() {
    uniffi::uniffi_bindgen_main()
}
