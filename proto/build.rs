//! Compiles `proto/*.proto` with prost. Needs `protoc` (Debian: protobuf-compiler).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut cfg = prost_build::Config::new();
    cfg.bytes(["."]);
    cfg.compile_protos(&["proto/coord.proto", "proto/raft.proto"], &["proto"])?;
    Ok(())
}
