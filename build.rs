//! Compiles proto/svclbaas/v1/translator.proto with protox (pure Rust: no
//! protoc to install) into the gRPC code and the descriptor set that server
//! reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/svclbaas/v1/translator.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("translator_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Undecodable messages are INVALID_ARGUMENT (src/api/grpc.rs, `codec`).
        .codec_path("crate::api::grpc::codec::ArgumentCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
