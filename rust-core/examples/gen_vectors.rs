//! Regenerate `test-vectors/vouchers/*.json` and `test-vectors/keys.json`:
//! `cargo run -p evoucher-core --example gen_vectors`. Deterministic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/jwt_vectors.rs"]
mod jwt_vectors;
#[path = "../tests/support/vectors.rs"]
mod vectors;

/// Replace the `*.json` files of `dir` with `cases`, and write the set's keys to `keys_file`.
fn write_set(
    dir: &std::path::Path,
    cases: &[(String, serde_json::Value)],
    keys_file: &std::path::Path,
    keys: &serde_json::Value,
) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(p).unwrap();
        }
    }
    for (name, v) in cases {
        std::fs::write(dir.join(format!("{name}.json")), vectors::to_file_text(v)).unwrap();
    }
    std::fs::write(keys_file, vectors::to_file_text(keys)).unwrap();
    println!("wrote {} vectors to {}", cases.len(), dir.display());
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-vectors");
    write_set(
        &root.join("vouchers"),
        &vectors::generate(),
        &root.join("keys.json"),
        &vectors::keys_json(),
    );
    write_set(
        &root.join("jwt"),
        &jwt_vectors::generate(),
        &root.join("jwt-keys.json"),
        &jwt_vectors::keys_json(),
    );
}
