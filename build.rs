//! Compiles the contracts in `proto/` into Rust (prost messages, tonic
//! clients and servers) and a file descriptor set for server reflection.
//! protoc comes from the protoc-bin-vendored crate, so a machine with no
//! system protoc builds.

use std::{error::Error, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/dishpatch/restaurant/v1/restaurant.proto",
    "proto/dishpatch/order/v1/order.proto",
    "proto/dishpatch/notify/v1/notify.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let protos: Vec<PathBuf> = PROTOS.iter().map(PathBuf::from).collect();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("dishpatch_descriptor.bin"))
        .compile_with_config(config, &protos, &[PathBuf::from("proto"), well_known])?;
    Ok(())
}
