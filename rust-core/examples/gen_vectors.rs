//! Regenerate `test-vectors/vouchers/*.json` and `test-vectors/keys.json`:
//! `cargo run -p evoucher-core --example gen_vectors`. Deterministic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/jwt_vectors.rs"]
mod jwt_vectors;
#[path = "../tests/support/vectors.rs"]
mod vectors;

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    let dir = root.join("vouchers");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let cases = vectors::generate();
    for (name, v) in &cases {
        std::fs::write(dir.join(format!("{name}.json")), vectors::to_file_text(v)).unwrap();
    }
    std::fs::write(
        root.join("keys.json"),
        vectors::to_file_text(&vectors::keys_json()),
    )
    .unwrap();
    println!("wrote {} vectors to {}", cases.len(), dir.display());

    let dir = root.join("jwt");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let cases = jwt_vectors::generate();
    for (name, v) in &cases {
        std::fs::write(dir.join(format!("{name}.json")), vectors::to_file_text(v)).unwrap();
    }
    std::fs::write(
        root.join("jwt-keys.json"),
        vectors::to_file_text(&jwt_vectors::keys_json()),
    )
    .unwrap();
    println!("wrote {} JWT vectors to {}", cases.len(), dir.display());
}
