//! The gRPC code the server compiles (proto/generated/: the messages, the
//! Translator service and the descriptor set reflection serves) is generated
//! from proto/ and committed, so a release build needs no protobuf compiler.
//! This test generates it again and requires the same bytes; after changing
//! the proto, `SVC_LBAAS_WRITE_PROTO=1 cargo test --test proto` writes it.

use std::path::{Path, PathBuf};

const PROTO: &str = "proto/svclbaas/v1/translator.proto";

fn generate(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile([PROTO], ["proto"])?;
    std::fs::write(
        out.join("translator_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Undecodable messages are INVALID_ARGUMENT (src/api/grpc.rs, `codec`).
        .codec_path("crate::api::grpc::codec::ArgumentCodec")
        .build_client(true)
        .build_server(true)
        .out_dir(out)
        .compile_fds(fds)?;
    Ok(())
}

#[test]
fn the_committed_grpc_code_is_what_the_proto_generates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = root.join("proto/generated");
    let fresh: PathBuf =
        std::env::temp_dir().join(format!("svc-lbaas-proto-{}", std::process::id()));
    std::fs::create_dir_all(&fresh).expect("a temporary folder");
    std::env::set_current_dir(root).expect("the crate's root");
    generate(&fresh).expect("the proto compiles");
    let write = std::env::var("SVC_LBAAS_WRITE_PROTO").as_deref() == Ok("1");
    for file in ["svclbaas.v1.rs", "translator_descriptor.bin"] {
        let want = std::fs::read(fresh.join(file)).expect("generated");
        if write {
            std::fs::write(committed.join(file), &want).expect("written");
            continue;
        }
        let have = std::fs::read(committed.join(file)).unwrap_or_default();
        assert!(
            have == want,
            "proto/generated/{file} is not what {PROTO} generates: run SVC_LBAAS_WRITE_PROTO=1 cargo test --test proto"
        );
    }
    let _ = std::fs::remove_dir_all(&fresh);
}
