//! Generates rkctl's view of the ioctl contract from the one C header,
//! `include/uapi/rkalloc.h`: the structs through bindgen (whose layout tests
//! assert sizes and offsets), and the command numbers by compiling the
//! header's own `_IOWR` macros with the C compiler.
use std::{env, path::PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    let header = root.join("include/uapi/rkalloc.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=src/cmds.c");
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
    cc::Build::new()
        .file("src/cmds.c")
        .include(root.join("include"))
        .compile("rkctl_cmds");
}
