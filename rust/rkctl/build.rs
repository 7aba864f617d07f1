//! Generates rkctl's view of the ioctl contract from the one C header,
//! `include/uapi/rkalloc.h`: the structs through bindgen (whose layout tests
//! assert sizes and offsets), the command numbers by compiling the
//! header's own `_IOWR` macros with the C compiler, and the header's
//! "errors:" table (the errnos each command may return) as Rust constants
//! for `rkctl fuzz`.
use std::{env, path::PathBuf};

#[path = "src/fuzz/errtable.rs"]
mod errtable;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let header = root.join("include/uapi/rkalloc.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=src/cmds.c");
    println!("cargo:rerun-if-changed=src/fuzz/errtable.rs");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .allowlist_type("rkalloc_.*")
        .allowlist_var("RKALLOC_.*")
        .derive_default(true)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .generate()
        .expect("bindgen failed on include/uapi/rkalloc.h")
        .write_to_file(out.join("uapi.rs"))
        .expect("cannot write uapi.rs");
    let text = std::fs::read_to_string(&header).expect("cannot read include/uapi/rkalloc.h");
    let rows = errtable::parse(&text).unwrap_or_else(|e| panic!("include/uapi/rkalloc.h: bad errors: table: {e}"));
    std::fs::write(out.join("errtable.rs"), errtable::to_rust(&rows)).expect("cannot write errtable.rs");
    cc::Build::new()
        .file("src/cmds.c")
        .include(root.join("include"))
        .compile("rkctl_cmds");
}
